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


def check_ids(ids, known, where):
    """``ids`` as a list of Python ints, each one in ``known`` (a range, set or dict of valid ids).

    Raises ValueError naming the first id that is not an integer or not a known id, so a decode
    never returns a wrong character for id -1 (which a Python list would read from its end).
    """
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
