"""Hugging Face-format checkpoints: load GPT-2 and BERT weights into minillm, and write them back.

A Hugging Face model directory holds ``config.json`` and ``model.safetensors`` (and, for GPT-2's
tokenizer, ``vocab.json`` + ``merges.txt``). safetensors is a flat file of named arrays with a JSON
header: it is read here with the ``safetensors`` package's NumPy API, so neither PyTorch nor
``transformers`` is needed, and, like minillm's own checkpoints, it cannot run code when loaded.

What differs between the formats, and is converted here:
- GPT-2 stores its projections as ``Conv1D`` weights of shape (in, out); minillm (like nn.Linear)
  stores (out, in): every GPT-2 matrix is transposed on the way in and on the way out.
- GPT-2's ``c_attn`` is already q, k, v side by side = minillm's ``in_proj_weight`` (transposed).
- BERT stores query, key and value as three Linears; minillm concatenates them into ``in_proj_weight``.
- Names: ``transformer.h.0.ln_1`` is ``h.0.norm1``; ``bert.encoder.layer.0.attention.output.LayerNorm``
  is ``bert.layers.0.norm1``; the tables ``GPT2_NAMES`` / ``BERT_NAMES`` below list every one.
The output layer of both models is tied to the token embedding, so it is not stored twice.
"""
import json
import re
from pathlib import Path

import numpy as np

from .files import written_whole
from .models.config_checks import check_config, check_value
from .models.bert import BERT, BertConfig, BertForMaskedLM
from .models.gpt import GPT, GPTConfig

GPT2_NAMES = {   # minillm name (per layer i): (GPT-2 name, transpose?)
    "norm1.weight": ("ln_1.weight", False), "norm1.bias": ("ln_1.bias", False),
    "self_attn.in_proj_weight": ("attn.c_attn.weight", True), "self_attn.in_proj_bias": ("attn.c_attn.bias", False),
    "self_attn.out_proj.weight": ("attn.c_proj.weight", True), "self_attn.out_proj.bias": ("attn.c_proj.bias", False),
    "norm2.weight": ("ln_2.weight", False), "norm2.bias": ("ln_2.bias", False),
    "ff.linear1.weight": ("mlp.c_fc.weight", True), "ff.linear1.bias": ("mlp.c_fc.bias", False),
    "ff.linear2.weight": ("mlp.c_proj.weight", True), "ff.linear2.bias": ("mlp.c_proj.bias", False),
}
BERT_NAMES = {   # minillm name (per layer i) -> BERT name (Linear weights have the same layout)
    "self_attn.out_proj.weight": "attention.output.dense.weight", "self_attn.out_proj.bias": "attention.output.dense.bias",
    "norm1.weight": "attention.output.LayerNorm.weight", "norm1.bias": "attention.output.LayerNorm.bias",
    "ff.linear1.weight": "intermediate.dense.weight", "ff.linear1.bias": "intermediate.dense.bias",
    "ff.linear2.weight": "output.dense.weight", "ff.linear2.bias": "output.dense.bias",
    "norm2.weight": "output.LayerNorm.weight", "norm2.bias": "output.LayerNorm.bias",
}
BERT_EMBEDDINGS = {"tok.weight": "word_embeddings.weight", "pos.weight": "position_embeddings.weight",
                   "seg.weight": "token_type_embeddings.weight", "emb_norm.weight": "LayerNorm.weight",
                   "emb_norm.bias": "LayerNorm.bias"}
BERT_MLM_HEAD = {"transform.weight": "cls.predictions.transform.dense.weight",
                 "transform.bias": "cls.predictions.transform.dense.bias",
                 "transform_norm.weight": "cls.predictions.transform.LayerNorm.weight",
                 "transform_norm.bias": "cls.predictions.transform.LayerNorm.bias",
                 "decoder_bias": "cls.predictions.bias"}


# ============================================================================ files
def read_pretrained(path):
    """(config dict, {name: float32 array}) from a Hugging Face directory; one-line errors."""
    path = Path(path)
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a Hugging Face model directory: {name} is missing")
    try:
        from safetensors.numpy import load_file
    except ImportError as e:
        raise RuntimeError("reading model.safetensors needs the safetensors package: pip install safetensors") from e
    config = read_config_json(path)
    try:
        weights = load_file(str(path / "model.safetensors"))
    except Exception as e:                                   # the package raises its own error types
        raise ValueError(f"{path / 'model.safetensors'} could not be read ({type(e).__name__}: {e})") from None
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def read_config_json(path):
    """path/config.json as a dict; one-line errors naming the file (missing, not JSON, not an object)."""
    where = Path(path) / "config.json"
    if not where.is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model directory: config.json is missing")
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where} must hold a JSON object, got a {type(config).__name__}")
    return config


def write_pretrained(path, config, weights):
    """Write config.json and model.safetensors (float32, contiguous) into ``path``."""
    from safetensors.numpy import save_file
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    # both files are written first and then both renamed: a failure leaves the old pair as it was
    with written_whole(path / "model.safetensors") as weights_tmp, written_whole(path / "config.json") as config_tmp:
        save_file(arrays, str(weights_tmp), metadata={"format": "pt"})
        config_tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _field(config, name, where):
    """config[name], or a one-line error naming the file and the missing field."""
    if name not in config:
        raise ValueError(f"{where}: the field {name!r} is missing")
    return config[name]


def _check_layers(weights, pattern, n_layer, where):
    """The weight file must hold exactly the layers 0 .. n_layer - 1 that config.json announces."""
    found = {int(m.group(1)) for m in (re.match(pattern, k) for k in weights) if m}
    if found != set(range(n_layer)):
        raise ValueError(f"{where}: n_layer is {n_layer}, but model.safetensors holds "
                         f"{len(found)} layer(s) ({', '.join(map(str, sorted(found)[:5]))}{', ...' if len(found) > 5 else ''})")


def _epsilon(config, name, default, where):
    """config[name] (a LayerNorm epsilon) as a finite number > 0, or a one-line error naming it."""
    eps = config.get(name, default)
    check_value(name, eps, float, where)
    return float(eps)


def _loaded(model, state, path, strict=True):
    """model.load_state_dict(state, strict), its error naming the weight file the arrays came from."""
    try:
        return model.load_state_dict(state, strict=strict)
    except ValueError as e:
        raise ValueError(f"{Path(path) / 'model.safetensors'}: {e}") from None


def _take(weights, prefixes, name, path):
    """weights[prefix + name] for the first prefix present ("transformer." or "bert." may be absent)."""
    for prefix in prefixes:
        if prefix + name in weights:
            return weights[prefix + name]
    raise ValueError(f"{Path(path) / 'model.safetensors'} has no tensor {prefixes[0] + name!r}")


# ============================================================================ GPT-2
def load_gpt2(path):
    """A minillm GPT with the weights of a Hugging Face GPT-2 directory (GPT2LMHeadModel or GPT2Model)."""
    config, w = read_pretrained(path)
    where = f"{Path(path) / 'config.json'}"
    if config.get("model_type") != "gpt2":
        raise ValueError(f"{where} says model_type {config.get('model_type')!r}, expected 'gpt2'")
    fields = {ours: _field(config, theirs, where) for ours, theirs in
              (("vocab_size", "vocab_size"), ("block_size", "n_positions"), ("n_layer", "n_layer"),
               ("n_head", "n_head"), ("n_embd", "n_embd"))}
    cfg = check_config(GPTConfig, fields, where)                 # before any array is made
    C = cfg.n_embd
    if config.get("n_inner") not in (None, 4 * C):
        raise ValueError(f"{where}: n_inner {config['n_inner']!r} is not 4 * n_embd; minillm's GPT uses 4 * n_embd")
    if config.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"{where}: activation_function {config['activation_function']!r}; "
                         "minillm's GPT uses the tanh GELU")
    eps = _epsilon(config, "layer_norm_epsilon", 1e-5, where)
    _check_layers(w, r"(?:transformer\.)?h\.(\d+)\.", cfg.n_layer, where)
    model = GPT(cfg)
    pre = ("transformer.", "")
    state = {"wte.weight": _take(w, pre, "wte.weight", path), "wpe.weight": _take(w, pre, "wpe.weight", path),
             "ln_f.weight": _take(w, pre, "ln_f.weight", path), "ln_f.bias": _take(w, pre, "ln_f.bias", path)}
    for i in range(cfg.n_layer):
        for ours, (theirs, transpose) in GPT2_NAMES.items():
            a = _take(w, pre, f"h.{i}.{theirs}", path)
            state[f"h.{i}.{ours}"] = a.T if transpose else a
    _loaded(model, state, path)
    for block in model.h:                                    # GPT-2's LayerNorm epsilon
        block.norm1.eps = block.norm2.eps = eps
    model.ln_f.eps = eps
    return model


def save_gpt2(model, path):
    """Write a minillm GPT as a Hugging Face GPT2LMHeadModel directory (config.json + model.safetensors)."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_gpt2 writes a GPT, got {type(model).__name__}")
    c = model.config
    if not c.bias:
        raise ValueError("GPT-2 has biases in every Linear and LayerNorm; this model was built with bias=False")
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
              "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": model.ln_f.eps,
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "tie_word_embeddings": True, "bos_token_id": c.vocab_size - 1, "eos_token_id": c.vocab_size - 1}
    state = model.state_dict()
    weights = {f"transformer.{k}": state[k] for k in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias")}
    for i in range(c.n_layer):
        for ours, (theirs, transpose) in GPT2_NAMES.items():
            a = state[f"h.{i}.{ours}"]
            weights[f"transformer.h.{i}.{theirs}"] = a.T if transpose else a
    write_pretrained(path, config, weights)
    return Path(path)


# ============================================================================ BERT
def load_bert(path, with_mlm_head=True):
    """A minillm BertForMaskedLM (or the BERT encoder alone) from a Hugging Face BERT directory."""
    config, w = read_pretrained(path)
    where = f"{Path(path) / 'config.json'}"
    if config.get("model_type") != "bert":
        raise ValueError(f"{where} says model_type {config.get('model_type')!r}, expected 'bert'")
    fields = {ours: _field(config, theirs, where) for ours, theirs in
              (("vocab_size", "vocab_size"), ("max_position", "max_position_embeddings"),
               ("n_layer", "num_hidden_layers"), ("n_head", "num_attention_heads"), ("n_embd", "hidden_size"))}
    fields.update(type_vocab_size=config.get("type_vocab_size", 2), layer_norm_eps=config.get("layer_norm_eps", 1e-12))
    cfg = check_config(BertConfig, fields, where)                # before any array is made
    C = cfg.n_embd
    if config.get("intermediate_size", 4 * C) != 4 * C:
        raise ValueError(f"{where}: intermediate_size {config['intermediate_size']!r} is not 4 * hidden_size; "
                         "minillm's BERT uses 4 * hidden_size")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{where}: hidden_act {config['hidden_act']!r}; minillm's BERT uses the exact GELU")
    _check_layers(w, r"(?:bert\.)?encoder\.layer\.(\d+)\.", cfg.n_layer, where)
    pre = ("bert.", "")
    enc = {ours: _take(w, pre, "embeddings." + theirs, path) for ours, theirs in BERT_EMBEDDINGS.items()}
    for i in range(cfg.n_layer):
        layer = f"encoder.layer.{i}."
        q, k, v = (_take(w, pre, f"{layer}attention.self.{n}.weight", path) for n in ("query", "key", "value"))
        qb, kb, vb = (_take(w, pre, f"{layer}attention.self.{n}.bias", path) for n in ("query", "key", "value"))
        enc[f"layers.{i}.self_attn.in_proj_weight"] = np.concatenate([q, k, v])      # (3C, C)
        enc[f"layers.{i}.self_attn.in_proj_bias"] = np.concatenate([qb, kb, vb])
        for ours, theirs in BERT_NAMES.items():
            enc[f"layers.{i}.{ours}"] = _take(w, pre, layer + theirs, path)
    if not with_mlm_head:
        return _loaded(BERT(cfg), enc, path)
    missing = [theirs for theirs in BERT_MLM_HEAD.values() if theirs not in w]
    if missing:
        raise ValueError(f"{Path(path) / 'model.safetensors'} has no masked-LM head ({missing[0]!r} missing); "
                         "load the encoder with with_mlm_head=False")
    model = BertForMaskedLM(cfg)
    _loaded(model.bert, enc, path)
    _loaded(model, {ours: w[theirs] for ours, theirs in BERT_MLM_HEAD.items()}, path, strict=False)   # the head
    return model


def save_bert(model, path):
    """Write a minillm BertForMaskedLM as a Hugging Face BertForMaskedLM directory."""
    if not isinstance(model, BertForMaskedLM):
        raise TypeError(f"save_bert writes a BertForMaskedLM (encoder and masked-LM head), got {type(model).__name__}")
    c = model.config
    config = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": c.vocab_size,
              "hidden_size": c.n_embd, "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head,
              "intermediate_size": 4 * c.n_embd, "hidden_act": "gelu", "max_position_embeddings": c.max_position,
              "type_vocab_size": c.type_vocab_size, "layer_norm_eps": c.layer_norm_eps,
              "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.dropout, "tie_word_embeddings": True}
    state = model.state_dict()
    weights = {"bert.embeddings." + theirs: state["bert." + ours] for ours, theirs in BERT_EMBEDDINGS.items()}
    C = c.n_embd
    for i in range(c.n_layer):
        layer, ours_layer = f"bert.encoder.layer.{i}.", f"bert.layers.{i}."
        w_in, b_in = state[ours_layer + "self_attn.in_proj_weight"], state[ours_layer + "self_attn.in_proj_bias"]
        for j, n in enumerate(("query", "key", "value")):
            weights[f"{layer}attention.self.{n}.weight"] = w_in[j * C:(j + 1) * C]
            weights[f"{layer}attention.self.{n}.bias"] = b_in[j * C:(j + 1) * C]
        for ours, theirs in BERT_NAMES.items():
            weights[layer + theirs] = state[ours_layer + ours]
    for ours, theirs in BERT_MLM_HEAD.items():
        weights[theirs] = state[ours]
    write_pretrained(path, config, weights)
    return Path(path)
