"""A model config is checked before any array is made.

A config can come from command-line flags, a checkpoint's JSON or a Hugging Face config.json.
Each value must have its field's type and lie in its range, the heads must divide the width, and
the model it describes must stay below MAX_PARAMETERS: a config asking for 10^9 layers or a width
of 10^12 is refused with its size, instead of building layers until the memory runs out.
"""
import dataclasses
import math
import os

MAX_PARAMETERS = 2_000_000_000        # 8 GiB of float32 weights, before gradients and Adam's moments


def check_config(cls, fields, where):
    """An instance of the config dataclass ``cls`` built from the dict ``fields``, once every value
    is checked. ``where`` names the source (a file, "the command line") in the one-line error."""
    if not isinstance(fields, dict):
        raise ValueError(f"{where}: the model config must be an object of named sizes, got {type(fields).__name__}")
    known = {f.name: f.type for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} field(s) {', '.join(map(repr, unknown))}")
    for name, value in fields.items():
        check_value(name, value, known[name], where)
    config = cls(**fields)
    heads = getattr(config, "n_head", None)
    width_name = "d_model" if hasattr(config, "d_model") else "n_embd"
    width = getattr(config, width_name, None)
    if heads and width % heads:
        raise ValueError(f"{where}: {width_name} {width} is not divisible by n_head {heads}")
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        raise ValueError(f"{where}: this config describes a model of about {count:,} parameters "
                         f"({count * 4 / 2**30:,.1f} GiB in float32); minillm builds at most {MAX_PARAMETERS:,}")
    return config


def check_value(name, value, kind, where):
    """Raise ValueError unless ``value`` fits a field of type ``kind`` (positive ints, finite floats)."""
    if kind is bool:
        ok, expected = isinstance(value, bool), "true or false"
    elif kind is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool) and value >= 1, "an integer >= 1"
    elif kind is float and name == "dropout":
        ok, expected = _real(value) and 0 <= value < 1, "a number in [0, 1)"
    elif kind is float:
        ok, expected = _real(value) and math.isfinite(value) and value > 0, "a finite number > 0"
    else:
        ok, expected = True, ""
    if not ok:
        raise ValueError(f"{where}: {name} must be {expected}, got {value!r}")


def _real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parameter_count(config):
    """About how many parameters the model of ``config`` has, from its sizes alone (the matrices
    exactly; the heads' bias and norm vectors are left out)."""
    if hasattr(config, "hidden_size"):                                  # the LSTM language model
        V, E, H, L = config.vocab_size, config.embed_dim, config.hidden_size, config.num_layers
        return V * E + 4 * H * (E + H) + (L - 1) * 4 * H * (2 * H) + 8 * H * L + H * V + V
    if hasattr(config, "n_encoder_layer"):                              # the encoder-decoder
        C, F = config.d_model, config.dim_feedforward
        # the source table, the target's own table unless shared, and the output layer (V_t x C)
        tables = config.src_vocab_size * C + config.tgt_vocab_size * C * (1 if config.share_embeddings else 2)
        return tables + config.n_encoder_layer * (4 * C * C + 2 * C * F) + config.n_decoder_layer * (8 * C * C + 2 * C * F)
    if hasattr(config, "intermediate_size"):                            # Llama: GQA, SwiGLU, maybe a head
        C, L, V, F = config.n_embd, config.n_layer, config.vocab_size, config.intermediate_size
        D = config.head_dim or C // config.n_head
        attention = C * D * (2 * config.n_head + 2 * config.n_kv_head)
        return V * C * (1 if config.tie_word_embeddings else 2) + L * (attention + 3 * C * F)
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    positions = getattr(config, "block_size", None) or getattr(config, "max_position")
    block = 12 * C * C + 13 * C                                         # attention 4C^2, feed-forward 8C^2
    return V * C + positions * C + L * block + 2 * C


def step_memory_bytes(config, batch_size, length):
    """About how many bytes (float32) the caches of one training step on (batch_size, length) ids
    hold, from the sizes alone: per layer a few dozen (B, T, C) arrays (projections, norms, the
    feed-forward) and three (B, H, T, T) attention arrays, then the logits (B, T, V) and their
    gradient. An estimate, within a small factor, for refusing what cannot fit."""
    B, T = batch_size, length
    if hasattr(config, "hidden_size"):                                  # the LSTM language model
        H, L, V = config.hidden_size, config.num_layers, config.vocab_size
        return 4 * B * T * (12 * H * L + 2 * config.embed_dim + 3 * V)
    if hasattr(config, "n_encoder_layer"):  # T bounds both sides, a decoder block counts twice: an upper estimate
        C, L, V = config.d_model, config.n_encoder_layer + 2 * config.n_decoder_layer, config.tgt_vocab_size
    else:
        C, L, V = config.n_embd, config.n_layer, config.vocab_size
    return 4 * (B * T * (34 * C * L + 3 * V) + 3 * B * config.n_head * T * T * L)


def physical_memory_bytes():
    """This machine's memory in bytes, or None where the operating system does not say (Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_step_memory(config, batch_size, length, where):
    """ValueError when one training step would need more memory than the machine has."""
    need, have = step_memory_bytes(config, batch_size, length), physical_memory_bytes()
    if have and need > have:
        raise ValueError(f"{where}: one training step on {batch_size:,} x {length:,} tokens would hold about "
                         f"{need / 2**30:,.1f} GiB of activations; this machine has {have / 2**30:,.1f} GiB")
