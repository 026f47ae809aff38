"""Saving and loading tokenizers as JSON (no pickle): ``to_dict()`` and its inverse."""
import json
import os

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

    Written to ``path.tmp`` and renamed, so a failed save leaves the previous file whole.
    """
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(tokenizer.to_dict(), f, ensure_ascii=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_tokenizer(path):
    """The tokenizer saved by save_tokenizer at ``path`` (JSON, no pickle)."""
    with open(path, encoding="utf-8") as f:
        return tokenizer_from_dict(json.load(f))
