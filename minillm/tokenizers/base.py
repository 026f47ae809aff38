"""What every tokenizer here shares: cutting special-token strings out of a text.

Special tokens ("<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]") get ids of their own after
the regular vocabulary. ``encode(text, allowed_special=True)`` recognises them inside a text,
so "a[SEP]b" becomes the ids of "a", then [SEP]'s id, then the ids of "b".
"""
import re


def split_specials(text, specials, allowed):
    """text -> [(piece, is_special)]: the special-token strings of ``specials`` cut out when ``allowed``.

    The longest special token is tried first, so "[SEP]" is never read as a shorter one inside it.
    """
    if not allowed or not specials:
        return [(text, False)]
    pattern = "(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")"
    return [(p, p in specials) for p in re.split(pattern, text) if p]


def lookup_token(token, stoi, special_tokens):
    """The id of a special token or of one vocabulary unit (a character, a word); KeyError if unknown."""
    if token in special_tokens:
        return special_tokens[token]
    if token in stoi:
        return stoi[token]
    raise KeyError(f"unknown token {token!r}")


def is_list_like(value):
    """True for a list, tuple, array or other iterable of items; False for a string, bytes, a dict
    (whose iteration gives keys) or a single value."""
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict))


def check_strings(name, value, where, allow_empty=False):
    """``value`` as a list of distinct strings (a tokenizer's characters or special tokens), else a
    TypeError or ValueError naming ``name``."""
    if not is_list_like(value):
        raise TypeError(f"{where}: {name} must be a list of strings, got {repr(value)[:60]}")
    value = list(value)
    for position, item in enumerate(value):
        if not isinstance(item, str) or (not item and not allow_empty):
            raise TypeError(f"{where}: {name} must hold non-empty strings, got {item!r} at position {position}")
    if len(set(value)) != len(value):
        twice = next(item for item in value if value.count(item) > 1)
        raise ValueError(f"{where}: {name} holds {twice!r} twice")
    return value


def check_id_list(name, value, where):
    """``value`` as a list of distinct integers >= 0 (ids a tokenizer gives its tokens), else a
    TypeError or ValueError naming ``name``."""
    if not is_list_like(value):
        raise TypeError(f"{where}: {name} must be a list of integer ids, got {repr(value)[:60]}")
    value = list(value)
    for position, i in enumerate(value):
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise ValueError(f"{where}: {name} must hold integers >= 0, got {i!r} at position {position}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: {name} gives one id to two tokens")
    return value


def check_ids(ids, known, where):
    """``ids`` as a list of Python ints, each one in ``known`` (a range, set or dict of valid ids).

    Raises ValueError naming the first id that is not an integer or not a known id, so a decode
    never returns a wrong character for id -1 (which a Python list would read from its end).
    """
    if getattr(ids, "ndim", 1) != 1 or isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        shape = getattr(ids, "shape", None)
        got = f"an array of shape {shape}" if shape is not None else repr(ids)[:60]
        raise TypeError(f"{where}: ids must be a 1-D sequence of integers (decode each row of a batch), got {got}")
    out = []
    for position, i in enumerate(ids):
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise ValueError(f"{where}: ids must be integers, got {i!r} at position {position}")
        i = int(i)
        if i not in known:
            raise ValueError(f"{where}: id {i} at position {position} is not in the vocabulary ({describe(known)})")
        out.append(i)
    return out


def describe(known):
    """'ids 0..103' for a range, else the count of known ids."""
    if isinstance(known, range):
        return f"ids {known.start}..{known.stop - 1}"
    return f"{len(known)} known ids"
