"""Byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2, Radford et al. 2019).

Start from the 256 byte values, so any UTF-8 text (Chinese, emoji) is representable, and
repeatedly merge the most frequent adjacent pair into a new token:
    vocab = 256 bytes;  repeat: (a, b) = most frequent pair;  new id = a + b
Text is first split into pieces (words with their leading space, numbers, punctuation,
whitespace) and merges never cross pieces, as in GPT-2. Special tokens get ids after the merges.
decode(encode(s)) == s for every string.
"""
import heapq
import json
import re
from collections import Counter

from ..files import written_whole
from .base import check_id_list, check_ids, check_strings, is_list_like, split_specials

# GPT-2's split pattern, written with the standard library's re (\p{L} -> [^\W\d_], \p{N} -> \d):
# contractions, letters with an optional leading space, digits, other symbols, whitespace runs.
SPLIT_PATTERN = re.compile(r"""'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def merge_pair(ids, pair, new_id):
    """ids with every non-overlapping occurrence of ``pair`` (left to right) replaced by new_id."""
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def _most_frequent(heap, pairs):
    """The pair with the highest count in ``pairs`` (ties: the smallest ids), or None if none is left.

    ``heap`` holds (-count, pair) entries, pushed whenever a count changes, so a pair may have
    older entries with counts it no longer has; those are dropped when they reach the top
    ("lazy deletion"). The top entry whose count is current is the answer, found in
    O(log n) per dropped entry instead of a pass over every pair.
    """
    while heap:
        neg_count, pair = heap[0]
        if pairs.get(pair, 0) == -neg_count:
            return pair
        heapq.heappop(heap)
    return None


def check_merges(merges):
    """The merges as a list of pairs of ints, merge i joining two tokens that exist before it
    (ids below 256 + i); otherwise a ValueError naming the merge."""
    if not is_list_like(merges):
        raise TypeError(f"BPE merges must be a list of pairs of token ids, got {repr(merges)[:60]}")
    checked = []
    for i, merge in enumerate(merges):
        try:
            a, b = merge
        except (TypeError, ValueError):
            raise ValueError(f"BPE merge {i} must be a pair of token ids, got {merge!r}") from None
        for t in (a, b):
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < 256 + i:
                raise ValueError(f"BPE merge {i} refers to token {t!r}, which does not exist before it "
                                 f"(ids 0..{256 + i - 1})")
        checked.append((a, b))
    return checked


class ByteBPETokenizer:
    """Byte-level BPE: ids 0..255 are bytes, 256.. are merges in the order learned, then specials.

    ``ids`` (optional) renumbers tokens, for vocabularies made elsewhere (GPT-2's vocab.json):
    ids[i] is the id of internal token i (byte i for i < 256, merge i - 256 after that).
    """

    kind = "bpe"

    def __init__(self, merges, special_tokens=(), ids=None, special_ids=None, pre_tokenizer=None,
                 ignore_merges=False):
        """merges: [(a, b)] by rank; special_tokens: distinct strings; ids, special_ids: distinct ints or None;
        pre_tokenizer: a tokenizer.json pre_tokenizer description (None: GPT-2's SPLIT_PATTERN);
        ignore_merges: a piece that is a whole token of the vocabulary is that token (Llama 3)."""
        self.merges = check_merges(merges)                            # [(a, b)]: merged into 256 + i
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}
        self.token_bytes = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.token_bytes.append(self.token_bytes[a] + self.token_bytes[b])
        special_tokens = check_strings("special_tokens", special_tokens, "ByteBPETokenizer")
        if ids is not None:
            ids = check_id_list("ids", ids, "ByteBPETokenizer")
        if special_ids is not None:
            special_ids = check_id_list("special_ids", special_ids, "ByteBPETokenizer")
            if ids is not None and set(ids) & set(special_ids):
                raise ValueError("ByteBPETokenizer: special_ids and ids share the id "
                                 f"{min(set(ids) & set(special_ids))}")
        if ids is not None and len(ids) != len(self.token_bytes):
            raise ValueError(f"ByteBPETokenizer: ids renumbers {len(ids)} tokens, but there are "
                             f"{len(self.token_bytes)} (256 bytes + {len(self.merges)} merges)")
        if special_ids is not None and len(special_ids) != len(special_tokens):
            raise ValueError(f"ByteBPETokenizer: {len(special_ids)} special ids for {len(special_tokens)} special tokens")
        if special_ids is None:
            special_ids = [len(self.token_bytes) + i for i in range(len(special_tokens))]
        self.special_tokens = dict(zip(special_tokens, special_ids))
        self.id_to_special = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}
        self.ids = None if ids is None else list(ids)                  # internal -> external id
        self.internal = None if ids is None else {e: i for i, e in enumerate(self.ids)}
        self._cache = {}
        self.pre_tokenizer, self.ignore_merges = pre_tokenizer, bool(ignore_merges)
        self._split = SPLIT_PATTERN.findall
        if pre_tokenizer is not None:
            from .pretokenizers import PreTokenizer
            self._split = PreTokenizer(pre_tokenizer)
        self._whole = {t: i for i, t in enumerate(self.token_bytes)} if self.ignore_merges else {}

    @property
    def vocab_size(self):
        """Number of ids: 256 bytes + one per merge + special tokens (or the largest mapped id + 1)."""
        if self.ids is None:
            return len(self.token_bytes) + len(self.special_tokens)
        return max(self.ids + list(self.special_tokens.values())) + 1

    def token_to_id(self, token):
        """The id of a special token (e.g. "[MASK]"), or of a string that is exactly one token."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        ids = self.encode(token)
        if len(ids) != 1:
            raise KeyError(f"{token!r} is not a single token of this vocabulary (it encodes to {len(ids)} ids)")
        return ids[0]

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text, vocab_size, special_tokens=(), verbose=False):
        """Learn vocab_size - 256 - len(special_tokens) merges from ``text``.

        Counts are kept per distinct piece (a word occurring 1000 times is one entry with count
        1000), and after each merge only the pieces that contain the merged pair are updated.
        The most frequent pair comes from a heap (see _most_frequent) rather than a scan of all
        pairs, whose cost would grow with the vocabulary at every merge.
        """
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be at least 256 + {len(special_tokens)} special tokens, got {vocab_size}")
        counts = Counter(SPLIT_PATTERN.findall(text))
        words = [list(w.encode("utf-8")) for w in counts]
        freqs = list(counts.values())
        pairs, where = Counter(), {}
        for wi, w in enumerate(words):
            for pair in zip(w, w[1:]):
                pairs[pair] += freqs[wi]
                where.setdefault(pair, set()).add(wi)
        heap = [(-n, pair) for pair, n in pairs.items()]
        heapq.heapify(heap)
        merges = []
        for step in range(n_merges):
            best = _most_frequent(heap, pairs)
            if best is None or pairs[best] < 2:
                break
            new_id = 256 + len(merges)
            merges.append(best)
            changed = set()
            for wi in list(where.get(best, ())):
                w, f = words[wi], freqs[wi]
                for pair in zip(w, w[1:]):                              # remove the word's old pairs ...
                    pairs[pair] -= f
                    changed.add(pair)
                merged = merge_pair(w, best, new_id)
                words[wi] = merged
                for pair in zip(merged, merged[1:]):                    # ... and add its new ones
                    pairs[pair] += f
                    changed.add(pair)
                    where.setdefault(pair, set()).add(wi)
            for pair in changed:                                        # the heap learns the new counts
                if pairs[pair] > 0:
                    heapq.heappush(heap, (-pairs[pair], pair))
                else:
                    del pairs[pair]
            where.pop(best, None)
            if verbose and (step + 1) % 100 == 0:
                print(f"  merge {step + 1}/{n_merges}")
        return cls(merges, special_tokens)

    # ------------------------------------------------------------------ encoding
    def _encode_piece(self, piece):
        if piece in self._cache:
            return self._cache[piece]
        whole = self._whole.get(piece.encode("utf-8"))
        if whole is not None:
            return [whole]
        ids = list(piece.encode("utf-8"))
        while len(ids) > 1:                      # apply the earliest-learned merge present, as in training
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            ids = merge_pair(ids, pair, 256 + self.ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[piece] = ids
        return ids

    def encode(self, text, allowed_special=False):
        """text -> ids: split into words (SPLIT_PATTERN), then apply the merges inside each word.
        Special tokens written in the text become their ids only with allowed_special."""
        ids = []
        for part, special in split_specials(text, self.special_tokens, allowed_special):
            if special:
                ids.append(self.special_tokens[part])
            else:
                for piece in self._split(part):
                    toks = self._encode_piece(piece)
                    ids.extend(toks if self.ids is None else [self.ids[t] for t in toks])
        return ids

    def decode(self, ids):
        """Bytes of every id joined, then UTF-8 decoded (an incomplete character shows as U+FFFD).
        An id that is neither a token nor a special token is a ValueError."""
        if getattr(self, "_known_ids", None) is None:          # made once: every id decode accepts
            tokens = range(len(self.token_bytes)) if self.internal is None else self.internal.keys()
            self._known_ids = set(tokens) | set(self.id_to_special)
        ids = check_ids(ids, self._known_ids, "ByteBPETokenizer.decode")
        data = b"".join(self.id_to_special.get(i) or
                        self.token_bytes[i if self.internal is None else self.internal[i]] for i in ids)
        return data.decode("utf-8", errors="replace")

    def to_dict(self):
        """The merges, special tokens and id map as a JSON-ready dict (tokenizer_from_dict inverts it)."""
        d = {"type": "bpe", "merges": [list(m) for m in self.merges], "special_tokens": list(self.special_tokens)}
        if self.ids is not None:
            d.update(ids=self.ids, special_ids=list(self.special_tokens.values()))
        if self.pre_tokenizer is not None:
            d.update(pre_tokenizer=self.pre_tokenizer, ignore_merges=self.ignore_merges)
        return d

    # ------------------------------------------------------------------ GPT-2's files
    @classmethod
    def from_gpt2_files(cls, vocab_path, merges_path):
        """Load GPT-2's vocab.json (token string -> id) and merges.txt (one "a b" pair per line, by rank).

        GPT-2 writes each byte as a printable character (``gpt2_byte_chars``) so that tokens are
        readable strings; a token string is the concatenation of its bytes' characters.
        """
        vocab = _read_vocab_json(vocab_path)
        try:
            with open(merges_path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise ValueError(f"{merges_path} is not UTF-8 text ({e})") from None
        pairs = []
        for number, line in enumerate(lines, start=1):
            if not line or (number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{merges_path}: line {number} must be two tokens separated by one space, got {line!r}")
            pairs.append((number, parts[0], parts[1]))
        return cls.from_vocab(vocab, pairs, f"{merges_path}: line", vocab_path)

    @classmethod
    def from_vocab(cls, vocab, pairs, merges_where, vocab_where, **options):
        """From {token string: id} and the merges [(number, a, b)] as GPT-2 writes tokens (a byte per
        printable character, ``gpt2_byte_chars``), as in vocab.json + merges.txt or tokenizer.json.
        Errors read "<merges_where> <number> ...", so merges_where names the file and what a number counts."""
        byte_char = gpt2_byte_chars()
        internal = {byte_char[b]: b for b in range(256)}               # token string -> internal id
        merges = []
        for number, a, b in pairs:
            if a not in internal or b not in internal:
                raise ValueError(f"{merges_where} {number} merges {a!r} and {b!r}, which are not tokens yet")
            if a + b in internal:
                raise ValueError(f"{merges_where} {number} makes {a + b!r}, a token made already")
            merges.append((internal[a], internal[b]))
            internal[a + b] = 256 + len(merges) - 1
        strings = sorted(internal, key=internal.get)                   # internal order
        missing = [t for t in strings if t not in vocab]
        if missing:
            raise ValueError(f"{vocab_where} has no id for token {missing[0]!r} (made by the merges)")
        specials = [t for t in vocab if t not in internal]             # e.g. <|endoftext|>
        try:
            return cls(merges, specials, ids=[vocab[t] for t in strings], special_ids=[vocab[t] for t in specials],
                       **options)
        except ValueError as e:
            raise ValueError(f"{vocab_where}: {e}") from None

    def save_gpt2_files(self, directory):
        """Write vocab.json and merges.txt in GPT-2's format (readable by transformers' GPT2Tokenizer)."""
        from pathlib import Path
        byte_char = gpt2_byte_chars()
        strings = ["".join(byte_char[b] for b in t) for t in self.token_bytes]
        ids = self.ids or list(range(len(strings)))
        vocab = {s: i for s, i in zip(strings, ids)}
        vocab.update(self.special_tokens)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with written_whole(directory / "vocab.json") as tmp:
            tmp.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        merges = "\n".join(f"{strings[a]} {strings[b]}" for a, b in self.merges)
        with written_whole(directory / "merges.txt") as tmp:
            tmp.write_text("#version: 0.2\n" + merges + "\n", encoding="utf-8")
        return directory


def _read_vocab_json(path):
    """vocab.json as {token string: id >= 0}, or a ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(vocab, dict):
        raise ValueError(f"{path} must hold a JSON object (token -> id), got a {type(vocab).__name__}")
    bad = next(((t, i) for t, i in vocab.items() if isinstance(i, bool) or not isinstance(i, int) or i < 0), None)
    if bad is not None:
        raise ValueError(f"{path}: the id of {bad[0]!r} must be an integer >= 0, got {bad[1]!r}")
    return vocab


def gpt2_byte_chars():
    """GPT-2's printable stand-in for each byte value: {byte: one-character string}.

    Bytes that are already visible, non-space characters in Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ')
    stand for themselves; the other 68 (control characters, space, ...) are given the characters
    chr(256), chr(257), ... in byte order, so every token prints as visible text.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in visible}, 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars
