"""Character tokenizer: one id per character seen in the training text, then special tokens.

A character it has never seen is an error, unless "[UNK]" is one of its special tokens.
decode(encode(s)) == s for any string it accepts.
"""
from .base import check_ids, check_strings, lookup_token, split_specials


class CharTokenizer:
    """Characters of a training text, sorted; ids 0..n-1, then special tokens."""

    kind = "char"

    def __init__(self, chars, special_tokens=()):
        """chars: a string or list of distinct one-character strings; special_tokens: distinct strings."""
        self.chars = check_strings("chars", list(chars) if isinstance(chars, str) else chars, "CharTokenizer")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError(f"CharTokenizer: chars must be single characters, got "
                             f"{next(c for c in self.chars if len(c) != 1)!r}")
        special_tokens = check_strings("special_tokens", special_tokens, "CharTokenizer")
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.special_tokens = {s: len(self.chars) + i for i, s in enumerate(special_tokens)}
        self.id_to_special = {i: s for s, i in self.special_tokens.items()}

    @classmethod
    def train(cls, text, special_tokens=()):
        """A tokenizer whose vocabulary is the sorted set of characters of ``text``."""
        if not text:
            raise ValueError("CharTokenizer.train: the text is empty")
        return cls(sorted(set(text)), special_tokens)

    @property
    def vocab_size(self):
        """Number of ids: one per character of the training text + special tokens."""
        return len(self.chars) + len(self.special_tokens)

    def token_to_id(self, token):
        """The id of one character or special token; KeyError if unknown."""
        return lookup_token(token, self.stoi, self.special_tokens)

    def encode(self, text, allowed_special=False):
        """text -> ids, one per character; special tokens in the text become their ids only with allowed_special."""
        ids = []
        for piece, special in split_specials(text, self.special_tokens, allowed_special):
            if special:
                ids.append(self.special_tokens[piece])
                continue
            unknown = sorted(set(piece) - self.stoi.keys())
            if unknown and "[UNK]" in self.special_tokens:      # BERT-style vocabularies map them to [UNK]
                unk = self.special_tokens["[UNK]"]
                ids.extend(self.stoi.get(c, unk) for c in piece)
                continue
            if unknown:
                shown = "".join(unknown[:10])
                raise ValueError(f"CharTokenizer: {len(unknown)} character(s) not in the vocabulary: {shown!r} "
                                 "(the tokenizer knows only characters of its training text)")
            ids.extend(self.stoi[c] for c in piece)
        return ids

    def decode(self, ids):
        """ids -> text: each id's character (or special token) joined; an unknown id is a ValueError."""
        ids = check_ids(ids, range(self.vocab_size), "CharTokenizer.decode")
        return "".join(self.id_to_special.get(i) or self.chars[i] for i in ids)

    def to_dict(self):
        """The characters and special tokens as a JSON-ready dict (tokenizer_from_dict inverts it)."""
        return {"type": "char", "chars": "".join(self.chars), "special_tokens": list(self.special_tokens)}
