"""Figures from the command line: what a trained model attends to.

    minillm plot-attention --ckpt DIR --text "Return the list." [--out PNG]   # default: DIR/attention.png

Runs the text through a GPT or BERT checkpoint on the NumPy backend and draws, for every layer
(rows) and head (columns), the attention weights P = softmax(QK^T / sqrt(d) + mask) of that
layer: row i of a map is how query position i spreads its attention over the key positions.
"""
import numpy as np

from .. import backend
from ..files import written_whole


def attention_maps(model, ids):
    """ids: (T,) token ids -> list over layers of (H, T, T) attention weights (the plain path's P)."""
    blocks = model.h if hasattr(model, "h") else model.bert.layers
    model.eval()
    with_batch = backend.to_device(np.asarray(ids, dtype=np.int64)[None])
    model(with_batch)
    maps = []
    for block in blocks:
        att_cache = block.self_attn.cache.attention
        if not hasattr(att_cache, "probs"):
            raise RuntimeError("attention maps need the weights P, which the fused kernel does not keep")
        maps.append(backend.to_numpy(att_cache.probs[0]))        # P: (B, H, T, T) -> (H, T, T)
    for _, m in model.named_modules():
        m.cache = None                                            # forward-only: drop every cache
    return maps


def plot_attention(maps, labels, path, title=""):
    """Draw a grid of heat maps (layers x heads) with token labels on both axes; writes a PNG."""
    from matplotlib.figure import Figure          # no pyplot: no GUI backend is chosen
    L, H = len(maps), maps[0].shape[0]
    size = 1.6 + 0.18 * len(labels)
    fig = Figure(figsize=(size * H + 1.0, size * L + 0.6), layout="constrained")   # room for titles and the bar
    axes = fig.subplots(L, H, squeeze=False)
    image = None
    for layer in range(L):
        for head in range(H):
            ax = axes[layer][head]
            image = ax.imshow(maps[layer][head], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=90)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
            ax.set_title(f"layer {layer} head {head}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle(title or "attention weights (row: query, column: key)", fontsize=10)
    with written_whole(path) as tmp:               # a failed save leaves an earlier figure whole
        fig.savefig(tmp, dpi=100)
    return path
