"""BERT's WordPiece tokenizer (Wu et al. 2016; Devlin et al. 2018), for the vocab.txt of a
Hugging Face BERT directory.

Two stages, as in BERT's release and transformers' BertTokenizer:

1. Basic tokenization of the text into words:
   - drop control, format and private-use characters and U+FFFD; whitespace becomes a space;
   - put spaces around CJK ideographs, so each Chinese character is a word of its own;
   - split on whitespace; with do_lower_case, lower-case each word and strip its accents
     (Unicode NFD, then drop the combining marks: "Café" -> "cafe");
   - every punctuation character becomes a word of its own ("don't" -> "don", "'", "t").
2. WordPiece on each word: greedy longest match first. Take the longest prefix of the word
   that is in the vocabulary, then the longest continuation found as "##piece", and so on:
       "unaffable" -> "un", "##aff", "##able"
   A word that cannot be covered this way, or longer than 100 characters, becomes [UNK].

decode joins the pieces with spaces and glues each "##piece" to the one before. It does not
invert encode exactly: case, accents and the spaces around punctuation are lost in encoding.
"""
import unicodedata

from .base import check_ids, is_list_like, split_specials

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","))
MAX_WORD_CHARS = 100

# CJK Unified Ideographs and their extensions and compatibility blocks (not Hiragana, Katakana or Hangul,
# which BERT tokenizes like any other letters).
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_whitespace(c):
    """Space, tab, newlines and the other Unicode space separators (Zs: no-break space, ...)."""
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    """Control, format and private-use characters (Unicode Cc, Cf, Co), but not tab or newlines."""
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Co")


def is_punctuation(c):
    """Unicode punctuation, and every ASCII symbol that is not a letter, digit or space ($, +, ^, ...)."""
    cp = ord(c)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(c).startswith("P")


def is_cjk(c):
    """A CJK ideograph (a Chinese character, or a kanji / hanja)."""
    cp = ord(c)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def basic_words(text, do_lower_case=True):
    """Stage 1: text -> list of words (see the file docstring)."""
    chars = []
    for c in text:
        if c == "\ufffd" or is_control(c):                  # U+FFFD: what a broken byte decoded to
            continue
        chars.append(" " if is_whitespace(c) else f" {c} " if is_cjk(c) else c)
    words = []
    for word in "".join(chars).split():
        if do_lower_case:
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        piece = ""
        for c in word:
            if is_punctuation(c):
                words += [piece, c] if piece else [c]
                piece = ""
            else:
                piece += c
        if piece:
            words.append(piece)
    return words


class WordPieceTokenizer:
    """vocab: the token strings, in id order (the lines of vocab.txt)."""

    def __init__(self, vocab, do_lower_case=True):
        """vocab: a list of token strings (a line may repeat, as in some vocab.txt files; the last wins)."""
        if not is_list_like(vocab):
            raise TypeError(f"WordPieceTokenizer: vocab must be a list of token strings, got {repr(vocab)[:60]}")
        vocab = list(vocab)
        bad = next((t for t in vocab if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"WordPieceTokenizer: vocab must hold strings, got {bad!r}")
        if not isinstance(do_lower_case, bool):
            raise TypeError(f"WordPieceTokenizer: do_lower_case must be True or False, got {do_lower_case!r}")
        self.vocab, self.do_lower_case = vocab, do_lower_case
        self.ids = {tok: i for i, tok in enumerate(self.vocab)}
        if "[UNK]" not in self.ids:
            raise ValueError("WordPieceTokenizer: the vocabulary has no [UNK] token")
        self.special_tokens = {t: self.ids[t] for t in SPECIAL_TOKENS if t in self.ids}
        self.id_to_special = {i: t for t, i in self.special_tokens.items()}

    @classmethod
    def from_vocab_file(cls, path, do_lower_case=True):
        """One token per line, line i is id i (a Hugging Face BERT vocab.txt)."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls([line.rstrip("\n") for line in f], do_lower_case)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text ({e})") from None
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    @property
    def vocab_size(self):
        """Number of ids: the lines of vocab.txt."""
        return len(self.vocab)

    def token_to_id(self, token):
        """The id of one vocabulary entry, e.g. "[MASK]" or "##ing"; KeyError if absent."""
        if token not in self.ids:
            raise KeyError(f"{token!r} is not in the WordPiece vocabulary")
        return self.ids[token]

    def word_pieces(self, word):
        """Stage 2 for one word: greedy longest-match-first pieces, or ["[UNK]"]."""
        if len(word) > MAX_WORD_CHARS:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    break
                end -= 1
            if end == start:                  # nothing in the vocabulary starts here
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def encode(self, text, allowed_special=False):
        """text -> ids. With allowed_special, "[MASK]" and the other special tokens written in the
        text are kept whole; otherwise they are read as text ("[", "mask", "]")."""
        ids = []
        for part, special in split_specials(text, self.special_tokens, allowed_special):
            if special:
                ids.append(self.special_tokens[part])
                continue
            for word in basic_words(part, self.do_lower_case):
                ids.extend(self.ids[p] for p in self.word_pieces(word))
        return ids

    def decode(self, ids, clean_up_spaces=True):
        """ids -> text: pieces joined by spaces, "##" continuations glued to the piece before, and
        (as transformers' decode does by default) no space before . , ! or ?"""
        ids = check_ids(ids, range(len(self.vocab)), "WordPieceTokenizer.decode")
        return join_pieces([self.vocab[i] for i in ids], clean_up_spaces)

    def to_dict(self):
        """The vocabulary and casing as a JSON-ready dict (tokenizer_from_dict inverts it)."""
        return {"type": "wordpiece", "vocab": self.vocab, "do_lower_case": self.do_lower_case}


def join_pieces(pieces, clean_up_spaces=True):
    """["un", "##aff", "##able", "!"] -> "unaffable!" (see WordPieceTokenizer.decode)."""
    text = " ".join(pieces).replace(" ##", "")
    if clean_up_spaces:
        for spaced, tight in CLEAN_UP:
            text = text.replace(spaced, tight)
    return text

