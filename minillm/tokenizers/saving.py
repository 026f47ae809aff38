"""Saving and loading tokenizers as JSON (no pickle): ``to_dict()`` and its inverse."""
import json

from ..files import written_whole

from .bpe import ByteBPETokenizer
from .char import CharTokenizer
from .word import WordTokenizer
from .wordpiece import WordPieceTokenizer


FIELDS = {"char": ("chars",), "bpe": ("merges",), "wordpiece": ("vocab",), "word": ("words",)}   # the required ones


def tokenizer_from_dict(d):
    """Rebuild a tokenizer from ``to_dict()`` output; a damaged description is a ValueError or
    TypeError that starts with "tokenizer description" and names the field."""
    if not isinstance(d, dict):
        raise TypeError(f"tokenizer description must be a JSON object, got {type(d).__name__}")
    kind = d.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ValueError(f"tokenizer description: unknown type {kind!r} (expected 'char', 'bpe', 'wordpiece' or 'word')")
    missing = [name for name in FIELDS[kind] if name not in d]
    if missing:
        raise ValueError(f"tokenizer description ({kind}): the field {missing[0]!r} is missing")
    try:
        if kind == "char":
            return CharTokenizer(d["chars"], d.get("special_tokens", ()))
        if kind == "bpe":
            return ByteBPETokenizer(d["merges"], d.get("special_tokens", ()), d.get("ids"), d.get("special_ids"),
                                    d.get("pre_tokenizer"), d.get("ignore_merges", False))
        if kind == "word":
            return WordTokenizer(d["words"], d.get("special_tokens", ()), d.get("split", "whitespace"))
        return WordPieceTokenizer(d["vocab"], d.get("do_lower_case", True))
    except (TypeError, ValueError) as e:
        raise (ValueError if isinstance(e, ValueError) else TypeError)(f"tokenizer description ({kind}): {e}") from None


def save_tokenizer(tokenizer, path):
    """Write tokenizer.to_dict() to ``path`` as UTF-8 JSON.

    Written to a temporary file and renamed, so a failed save leaves the previous file whole.
    """
    with written_whole(path) as tmp:
        tmp.write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")


def load_tokenizer(path):
    """The tokenizer saved by save_tokenizer at ``path`` (JSON, no pickle)."""
    try:
        with open(path, encoding="utf-8") as f:
            return tokenizer_from_dict(json.load(f))
    except (TypeError, ValueError) as e:          # bad JSON, not UTF-8, or a damaged description
        raise (ValueError if isinstance(e, ValueError) else TypeError)(f"{path}: {e}") from None
