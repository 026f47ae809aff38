"""Hugging Face Llama-family directories (LlamaForCausalLM: Llama, SmolLM, TinyLlama): load and save.

    model = load_llama("SmolLM2-135M")          # config.json + model.safetensors (or sharded files)
    save_llama(model, "out")                    # transformers' from_pretrained reads it back

Names are Hugging Face's without their "model." prefix, and the matrices have the same (out, in)
layout, so nothing is transposed. Weights may be float32, float16 or bfloat16: the safetensors
files are read here (an 8-byte header length, a JSON header of names, dtypes, shapes and byte
ranges, then the raw bytes), and a bfloat16 is the upper half of a float32, so its 16 bits shifted
left by 16 are that float32, exactly. Large checkpoints come as model-0000i-of-0000n.safetensors
shards named by model.safetensors.index.json.
"""
import json
from pathlib import Path

import numpy as np

from .hub import _field, _loaded, read_config_json, write_pretrained
from .models.config_checks import check_config
from .models.llama import Llama, LlamaConfig

DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2), "F64": (np.float64, 8)}
SUPPORTED_TYPES = ("llama", "smollm")


def read_safetensors(path):
    """{name: float32 array} from one .safetensors file; sizes checked against the file before reading."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path} is too short to be a safetensors file")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, 100_000_000):
            raise ValueError(f"{path}: its header claims {n:,} bytes, more than the file holds")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: the header is not valid JSON ({e})") from None
        arrays = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            arrays[name] = _read_tensor(f, name, info, 8 + n, size, path)
    return arrays


def _read_tensor(f, name, info, base, size, path):
    try:
        dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: tensor {name!r} has no dtype, shape and data_offsets") from None
    if dtype not in DTYPES:
        raise ValueError(f"{path}: tensor {name!r} is {dtype}; minillm reads {', '.join(DTYPES)}")
    kind, width = DTYPES[dtype]
    count = int(np.prod(shape, dtype=np.int64))
    if min(shape, default=1) < 0 or end - begin != count * width or base + end > size:
        raise ValueError(f"{path}: tensor {name!r} of shape {shape} ({dtype}) does not fit its byte range")
    f.seek(base + begin)
    raw = np.frombuffer(f.read(end - begin), dtype=kind).reshape(shape)
    if dtype == "BF16":                       # bfloat16 = the top 16 bits of a float32
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def read_weights(path):
    """Every tensor of a directory: model.safetensors, or the shards its index names."""
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if (path / "model.safetensors").is_file():
        return read_safetensors(path / "model.safetensors")
    if not index.is_file():
        raise FileNotFoundError(f"{path} has neither model.safetensors nor model.safetensors.index.json")
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{index} is not a safetensors index with a weight_map ({type(e).__name__})") from None
    weights = {}
    for shard in shards:
        if Path(shard).name != shard or not (path / shard).is_file():
            raise FileNotFoundError(f"{index} names the shard {shard!r}, which is not in {path}")
        weights.update(read_safetensors(path / shard))
    missing = sorted(set(weight_map) - set(weights))
    if missing:
        raise ValueError(f"{index} maps {missing[0]!r} to a shard that does not hold it")
    return weights


def llama_config(config, where):
    """A checked LlamaConfig from a Hugging Face config.json dict; what minillm's Llama lacks is refused by name."""
    if config.get("model_type") not in SUPPORTED_TYPES:
        raise ValueError(f"{where} says model_type {config.get('model_type')!r}; minillm loads {SUPPORTED_TYPES}")
    for name, ok in (("attention_bias", False), ("mlp_bias", False), ("sliding_window", None)):
        if config.get(name, ok) not in (ok, None, False):
            raise ValueError(f"{where}: {name} = {config[name]!r} is not supported (minillm's Llama has no biases "
                             "and attends to the whole context)")
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{where}: hidden_act {config['hidden_act']!r}; minillm's Llama uses SiLU")
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    if not isinstance(rope, dict) or rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError(f"{where}: rope scaling {rope!r} is not supported (only plain rotary positions)")
    heads = _field(config, "num_attention_heads", where)
    fields = {"vocab_size": _field(config, "vocab_size", where), "n_embd": _field(config, "hidden_size", where),
              "block_size": _field(config, "max_position_embeddings", where),
              "n_layer": _field(config, "num_hidden_layers", where), "n_head": heads,
              "n_kv_head": config.get("num_key_value_heads") or heads,
              "intermediate_size": _field(config, "intermediate_size", where),
              "rope_theta": float(config.get("rope_theta", rope.get("rope_theta", 10000.0))),
              "rms_norm_eps": float(config.get("rms_norm_eps", 1e-6)),
              "tie_word_embeddings": bool(config.get("tie_word_embeddings", False))}
    head_dim = config.get("head_dim")
    if head_dim and head_dim != fields["n_embd"] // heads:
        fields["head_dim"] = head_dim
    if isinstance(heads, int) and isinstance(fields["n_kv_head"], int) and heads % max(fields["n_kv_head"], 1):
        raise ValueError(f"{where}: num_attention_heads {heads} is not divisible by num_key_value_heads "
                         f"{fields['n_kv_head']}")
    return check_config(LlamaConfig, fields, where)


def load_llama(path):
    """A minillm Llama with the weights of a Hugging Face LlamaForCausalLM directory (float32)."""
    path = Path(path)
    cfg = llama_config(read_config_json(path), str(path / "config.json"))     # before any array is made
    weights = read_weights(path)
    state = {name[len("model."):] if name.startswith("model.") else name: a for name, a in weights.items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    model = Llama(cfg)
    _loaded(model, state, path)
    return model


def save_llama(model, path):
    """Write a minillm Llama as a Hugging Face LlamaForCausalLM directory (config.json + model.safetensors)."""
    if not isinstance(model, Llama):
        raise TypeError(f"save_llama writes a Llama, got {type(model).__name__}")
    c = model.config
    if c.rope_interleaved:
        raise ValueError("Hugging Face's Llama pairs rotary coordinates half-split; this model uses interleaved "
                         "pairs (rope_interleaved=True), which it would read wrongly")
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": c.vocab_size,
              "hidden_size": c.n_embd, "intermediate_size": c.intermediate_size, "num_hidden_layers": c.n_layer,
              "num_attention_heads": c.n_head, "num_key_value_heads": c.n_kv_head,
              "max_position_embeddings": c.block_size, "rope_theta": c.rope_theta, "rms_norm_eps": c.rms_norm_eps,
              "tie_word_embeddings": c.tie_word_embeddings, "hidden_act": "silu", "attention_bias": False,
              "mlp_bias": False, "head_dim": c.head_dim or c.n_embd // c.n_head, "torch_dtype": "float32"}
    weights = {("" if name == "lm_head.weight" else "model.") + name: a for name, a in model.state_dict().items()}
    write_pretrained(path, config, weights)
    return Path(path)
