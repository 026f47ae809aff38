"""Saving and loading tokenizers as JSON (no pickle): ``to_dict()`` and its inverse."""
import json

from ..files import written_whole

from .bpe import ByteBPETokenizer
from .char import CharTokenizer
from .wordpiece import WordPieceTokenizer


def tokenizer_from_dict(d):
    """Rebuild a tokenizer from ``to_dict()`` output."""
    if d.get("type") == "char":
        return CharTokenizer(d["chars"], d.get("special_tokens", ()))
    if d.get("type") == "bpe":
        return ByteBPETokenizer(d["merges"], d.get("special_tokens", ()), d.get("ids"), d.get("special_ids"))
    if d.get("type") == "wordpiece":
        return WordPieceTokenizer(d["vocab"], d.get("do_lower_case", True))
    raise ValueError(f"unknown tokenizer type {d.get('type')!r} (expected 'char', 'bpe' or 'wordpiece')")


def save_tokenizer(tokenizer, path):
    """Write tokenizer.to_dict() to ``path`` as UTF-8 JSON.

    Written to a temporary file and renamed, so a failed save leaves the previous file whole.
    """
    with written_whole(path) as tmp:
        tmp.write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")


def load_tokenizer(path):
    """The tokenizer saved by save_tokenizer at ``path`` (JSON, no pickle)."""
    with open(path, encoding="utf-8") as f:
        return tokenizer_from_dict(json.load(f))
