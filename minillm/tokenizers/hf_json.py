"""Hugging Face's tokenizer.json for byte-level BPE models (GPT-2, Llama 3, SmolLM, Qwen's style).

The file holds the whole tokenizer: ``model`` (type BPE: vocab, merges, options), ``pre_tokenizer``
(how text is cut into pieces: pretokenizers.py), ``added_tokens`` (special tokens with their ids),
``normalizer`` and ``decoder``. Byte-level BPE needs no normalizer and decodes by mapping each
token's characters back to bytes, which ByteBPETokenizer does; what else a file asks for
(Unigram or WordPiece models, byte fallback, a normalizer) is refused by name.
"""
import json
from pathlib import Path

from .bpe import ByteBPETokenizer
from .pretokenizers import PreTokenizer


def _merges(model, where):
    """model.merges as [(index, a, b)]: "a b" strings (older files) or [a, b] pairs (newer ones)."""
    merges = model.get("merges")
    if not isinstance(merges, list):
        raise ValueError(f"{where}: model.merges must be a list")
    pairs = []
    for i, m in enumerate(merges):
        parts = m.split(" ") if isinstance(m, str) else m
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise ValueError(f"{where}: model.merges entry {i} must be 'a b' or [a, b], got {m!r}"[:200])
        pairs.append((i, parts[0], parts[1]))
    return pairs


def load_tokenizer_json(path):
    """A ByteBPETokenizer with the vocabulary, merges, pre-tokenizer and special tokens of ``path``."""
    path = Path(path)
    where = str(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing (a Hugging Face tokenizer is saved as tokenizer.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where} is not valid JSON ({e})") from None
    model = spec.get("model") if isinstance(spec, dict) else None
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else None
        raise ValueError(f"{where}: model type {kind!r} is not supported; minillm reads byte-level BPE")
    for name, fine in (("byte_fallback", (False, None)), ("continuing_subword_prefix", (None, "")),
                       ("end_of_word_suffix", (None, "")), ("dropout", (None, 0, 0.0))):
        if model.get(name) not in fine:
            raise ValueError(f"{where}: model.{name} = {model[name]!r} is not supported (byte-level BPE has none)")
    if spec.get("normalizer") is not None:
        raise ValueError(f"{where}: normalizer {spec['normalizer'].get('type')!r} is not supported "
                         "(byte-level BPE models have none)")
    pre = spec.get("pre_tokenizer")
    if pre is None:
        raise ValueError(f"{where}: no pre_tokenizer; a byte-level BPE file has a ByteLevel one")
    PreTokenizer(pre, where)                         # refuse what is not supported now, naming the file
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                              for i in vocab.values()):
        raise ValueError(f"{where}: model.vocab must map token strings to ids >= 0")
    vocab = dict(vocab)
    for token in spec.get("added_tokens") or []:     # the special tokens, with their ids
        if isinstance(token, dict) and isinstance(token.get("content"), str) and isinstance(token.get("id"), int):
            vocab.setdefault(token["content"], token["id"])
    return ByteBPETokenizer.from_vocab(vocab, _merges(model, where), f"{where}: model.merges entry", where,
                                       pre_tokenizer=pre, ignore_merges=bool(model.get("ignore_merges", False)))
