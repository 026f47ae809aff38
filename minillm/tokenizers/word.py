"""Word tokenizer: one id per whitespace-separated word of a training text, then an unknown word.

The vocabulary of the first neural translation and code-naming models (Sutskever et al. 2014;
Alon et al. 2019, whose targets are a name's subtokens): the words seen at least ``min_count``
times in training, most frequent first, up to ``max_size``. Every other word maps to "<unk>".

    encode("read config file") -> [id("read"), id("config"), id("file")]
    decode(ids)                -> the words joined by single spaces

So decode(encode(s)) == " ".join(s.split()) when every word of s is in the vocabulary.

With split="code" a text is cut as source code instead: every identifier becomes its subtokens,
lower case (``self._readConfig`` -> "self", ".", "read", "config"), a run of digits is one word
and every other visible character is a word of its own. A name and the identifiers of the code
around it then share their words, which a model can copy.
"""
import re
from collections import Counter

from .base import check_ids, check_strings, lookup_token, split_specials

UNK = "<unk>"
CODE_PIECES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")


def identifier_subtokens(name):
    """``readConfigFile`` or ``read_config_file`` -> ["read", "config", "file"]; "_" alone -> ["_"]."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).split("_")
    return [w.lower() for w in words if w] or ["_"]


def code_words(text):
    """Source code -> its words: identifiers as subtokens, digit runs, then single characters."""
    out = []
    for piece in CODE_PIECES.findall(text):
        out += identifier_subtokens(piece) if piece[0].isalpha() or piece[0] == "_" else [piece]
    return out


class WordTokenizer:
    """Words (ids 0..n-1, "<unk>" first), then special tokens such as "<pad>", "<s>", "</s>"."""

    kind = "word"

    def __init__(self, words, special_tokens=(), split="whitespace"):
        """words: distinct strings without whitespace, "<unk>" among them; special_tokens: distinct strings;
        split: "whitespace" or "code" (how a text is cut into words)."""
        if split not in ("whitespace", "code"):
            raise ValueError(f"WordTokenizer: split must be 'whitespace' or 'code', got {split!r}")
        self.split = split
        self.words = check_strings("words", words, "WordTokenizer")
        spaced = next((w for w in self.words if len(w.split()) != 1 or w.strip() != w), None)
        if spaced is not None:
            raise ValueError(f"WordTokenizer: a word cannot hold whitespace, got {spaced!r}")
        if UNK not in self.words:
            raise ValueError(f"WordTokenizer: words must include {UNK!r} (what an unseen word becomes)")
        special_tokens = check_strings("special_tokens", special_tokens, "WordTokenizer")
        self.stoi = {w: i for i, w in enumerate(self.words)}
        self.special_tokens = {s: len(self.words) + i for i, s in enumerate(special_tokens)}
        self.id_to_special = {i: s for s, i in self.special_tokens.items()}

    @classmethod
    def train(cls, texts, min_count=1, max_size=None, special_tokens=(), split="whitespace"):
        """The words of ``texts`` (a list of strings) seen at least min_count times, most frequent
        first (ties alphabetical), at most max_size of them besides "<unk>"."""
        cut = code_words if split == "code" else str.split
        counts = Counter(w for text in texts for w in cut(text))
        if not counts:
            raise ValueError("WordTokenizer.train: the texts hold no words")
        ranked = sorted((w for w, n in counts.items() if n >= min_count and w != UNK), key=lambda w: (-counts[w], w))
        return cls([UNK] + ranked[:max_size], special_tokens, split)

    def words_of(self, text):
        """text -> its words (whitespace-separated, or code_words with split="code")."""
        return code_words(text) if self.split == "code" else text.split()

    @property
    def vocab_size(self):
        """Number of ids: the words, "<unk>" included, + special tokens."""
        return len(self.words) + len(self.special_tokens)

    def token_to_id(self, token):
        """The id of one word or special token; KeyError if unknown."""
        return lookup_token(token, self.stoi, self.special_tokens)

    def encode(self, text, allowed_special=False):
        """text -> one id per word of words_of(text) ("<unk>"'s id for a word not in the vocabulary)."""
        ids, unk = [], self.stoi[UNK]
        for piece, special in split_specials(text, self.special_tokens, allowed_special):
            if special:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(self.stoi.get(w, unk) for w in self.words_of(piece))
        return ids

    def decode(self, ids):
        """ids -> the words (or special tokens) joined by single spaces; an unknown id is a ValueError."""
        ids = check_ids(ids, range(self.vocab_size), "WordTokenizer.decode")
        return " ".join(self.id_to_special.get(i) or self.words[i] for i in ids)

    def to_dict(self):
        """The words and special tokens as a JSON-ready dict (tokenizer_from_dict inverts it)."""
        return {"type": "word", "words": list(self.words), "special_tokens": list(self.special_tokens),
                "split": self.split}
