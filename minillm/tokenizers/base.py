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
