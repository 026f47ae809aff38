"""LoRA on a whole model: wrap chosen Linears in LoRALinear, train only the adapters, save them apart.

    apply_lora(model, rank=8, alpha=16, targets=("q_proj", "v_proj"))   # Llama's query and value projections
    opt = AdamW(lora_parameters(model))                                  # nothing else is trained
    save_adapters(model, "out")      # out/adapter.npz + out/adapter_config.json: kilobytes, not the model
    load_adapters(model, "out")      # the same model (same base weights) wrapped and filled again
    merge_lora(model)                # fold every update into its weight: an ordinary model again

``targets`` are the attribute names of Linear layers: q_proj, k_proj, v_proj, o_proj, gate_proj,
up_proj, down_proj in Llama; out_proj, linear1, linear2 in GPT and BERT (their q, k and v share one
fused in_proj_weight, which is not a Linear and cannot be wrapped).
"""
import json
from pathlib import Path

import numpy as np

from .. import backend
from ..files import written_whole
from ..nn.linear import Linear
from ..nn.lora import LoRALinear

ADAPTER_ARRAYS, ADAPTER_CONFIG = "adapter.npz", "adapter_config.json"


def apply_lora(model, rank, alpha=None, targets=("q_proj", "v_proj")):
    """Replace every Linear attribute named in ``targets`` by a LoRALinear around it; returns the
    wrapped layers' dotted names. A target that matches nothing is a ValueError naming it."""
    targets = tuple(targets)
    found = {name: [] for name in targets}
    for prefix, module in list(model.named_modules()):
        for attr, value in list(vars(module).items()):
            if attr in found and isinstance(value, Linear):
                setattr(module, attr, LoRALinear(value, rank, alpha))
                found[attr].append(f"{prefix}.{attr}" if prefix else attr)
    missing = [name for name, hits in found.items() if not hits]
    if missing:
        raise ValueError(f"LoRA targets {missing} match no Linear of {type(model).__name__}; its Linears are "
                         f"named {sorted(linear_names(model))}")
    return [name for hits in found.values() for name in hits]


def linear_names(model):
    """The attribute names of the model's Linear layers (what ``targets`` can name)."""
    return {attr for _, m in model.named_modules() for attr, v in vars(m).items() if isinstance(v, Linear)}


def lora_layers(model):
    """[(dotted name, LoRALinear)] of the model."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def lora_parameters(model):
    """The adapters' parameters (every lora_A and lora_B): what the optimizer should train."""
    return [p for _, layer in lora_layers(model) for p in (layer.lora_A, layer.lora_B)]


def merge_lora(model):
    """Fold every adapter into its weight (W += s B A)."""
    for _, layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model):
    """Take every adapter back out of its weight (W -= s B A)."""
    for _, layer in lora_layers(model):
        layer.unmerge()


def save_adapters(model, folder, extra=None):
    """Write the adapters (float32) and their rank, alpha and layer names into ``folder``."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("save_adapters: the model has no LoRA layers (apply_lora first)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"{name}.{p}": backend.to_numpy(getattr(layer, p).data).astype(np.float32)
              for name, layer in layers for p in ("lora_A", "lora_B")}
    config = {"r": layers[0][1].rank, "lora_alpha": layers[0][1].alpha, "layers": [name for name, _ in layers],
              "target_modules": sorted({name.rsplit(".", 1)[-1] for name, _ in layers}), **(extra or {})}
    with written_whole(folder / ADAPTER_ARRAYS) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    with written_whole(folder / ADAPTER_CONFIG) as tmp:
        tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def load_adapters(model, folder):
    """Wrap ``model`` as the adapters in ``folder`` say and load them; returns their config dict.
    Errors name the file and the layer (a model of another shape, a damaged file)."""
    folder = Path(folder)
    where = folder / ADAPTER_CONFIG
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
        rank, alpha, names = int(config["r"]), float(config["lora_alpha"]), list(config["layers"])
        targets = sorted({n.rsplit(".", 1)[-1] for n in names})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{where} is not a minillm adapter config ({type(e).__name__}: {e})") from None
    wrapped = apply_lora(model, rank, alpha, targets)
    if sorted(wrapped) != sorted(names):
        raise ValueError(f"{where} adapts the layers {sorted(names)[:4]}..., this model has {sorted(wrapped)[:4]}...")
    try:
        arrays = dict(np.load(folder / ADAPTER_ARRAYS, allow_pickle=False))
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder / ADAPTER_ARRAYS} could not be read ({e})") from None
    for name, layer in lora_layers(model):
        for p in ("lora_A", "lora_B"):
            param, key = getattr(layer, p), f"{name}.{p}"
            if key not in arrays or arrays[key].shape != param.data.shape:
                got = arrays[key].shape if key in arrays else "nothing"
                raise ValueError(f"{folder / ADAPTER_ARRAYS}: {key} should be {param.data.shape}, got {got}")
            param.data[...] = backend.to_device_of(arrays[key].astype(param.data.dtype), param.data)
    return config
