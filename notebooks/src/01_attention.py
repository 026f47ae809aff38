# %% [markdown]
# # 01 · Scaled dot-product attention, step by step
#
# **Article:** part 1, section 4 (the attention formula) and section 3 (attention inside BERT and GPT).
# **Code:** [`minillm/nn/attention.py`](../minillm/nn/attention.py) holds the formula, the forward and the backward, in that order.
#
# Every position of a sequence asks a *query*, every position offers a *key* and a *value*.
# A position's output is an average of the values, weighted by how well its query matches each key:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V$$
#
# with $Q \in \mathbb{R}^{T \times d_k}$, $K \in \mathbb{R}^{S \times d_k}$, $V \in \mathbb{R}^{S \times d_v}$,
# and a mask $M$ that is $0$ where a query may look and $-\infty$ where it may not.
# In minillm the arrays carry a batch and a head axis in front: `q: (B, H, T, D)`.

# %%
import os
import numpy as np
import matplotlib.pyplot as plt

import minillm
from minillm.nn import MultiHeadAttention, scaled_dot_product_attention, scaled_dot_product_attention_backward
from minillm.nn.attention import split_heads
from minillm import gradcheck

rng = np.random.default_rng(0)
words = ["the", "cat", "sat", "on", "the", "mat"]
T, D = len(words), 8
q, k, v = (rng.standard_normal((T, D)) for _ in range(3))
print("q, k, v:", q.shape, k.shape, v.shape)

# %% [markdown]
# ## The four steps by hand
# 1. **scores** $S = Q K^\top$: one dot product per (query, key) pair, shape $(T, T)$;
# 2. **scale** by $1/\sqrt{d_k}$;
# 3. **softmax** along each row, so each row of $P$ is a probability distribution over keys;
# 4. **mix** the values: $O = P V$.

# %%
S = q @ k.T                              # 1. (T, D) x (D, T) -> (T, T)
S = S / np.sqrt(D)                       # 2.
P = np.exp(S - S.max(axis=1, keepdims=True))
P = P / P.sum(axis=1, keepdims=True)     # 3. rows sum to one
O = P @ v                                # 4. (T, T) x (T, D) -> (T, D)
print("row sums of P:", P.sum(axis=1).round(6))

# minillm's function takes (B, H, T, D): add two axes of size one
out, cache = scaled_dot_product_attention(q[None, None], k[None, None], v[None, None])
print("same as minillm:", np.allclose(out[0, 0], O))

# %% [markdown]
# ## Why divide by $\sqrt{d_k}$?
# If the entries of $q$ and $k$ are independent with variance 1, the dot product $q \cdot k$ is a sum of
# $d_k$ such products and has variance $d_k$. Large scores push the softmax into a corner where one
# weight is almost 1 and the gradients of the others vanish. Dividing by $\sqrt{d_k}$ brings the
# variance back to 1 for every head size:

# %%
for d in (4, 16, 64, 256):
    a, b = rng.standard_normal((2, 10000, d))
    dots = (a * b).sum(axis=1)
    print(f"d_k = {d:3d}: std of q.k = {dots.std():6.2f},  after / sqrt(d_k) = {(dots / np.sqrt(d)).std():.2f}")

# %% [markdown]
# ## Masks
# * **causal** (GPT): position $i$ may only look at keys $j \le i$, so a language model cannot peek at the
#   token it must predict. Pass `is_causal=True`.
# * **padding** (BERT batches): the pad positions of a short sentence are never attended. Pass
#   `key_padding_mask` of shape `(B, S)`, `True` at pads.
#
# A masked score becomes $-\infty$ and its weight $e^{-\infty} = 0$.

# %%
pad = np.array([[False, False, False, False, True, True]])      # pretend the last two tokens are padding
maps = {
    "no mask": scaled_dot_product_attention(q[None, None], k[None, None], v[None, None])[1][4][0, 0],
    "causal (GPT)": scaled_dot_product_attention(q[None, None], k[None, None], v[None, None], is_causal=True)[1][4][0, 0],
    "padding (BERT)": scaled_dot_product_attention(q[None, None], k[None, None], v[None, None],
                                                   key_padding_mask=pad)[1][4][0, 0],
}
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, (title, p) in zip(axes, maps.items()):
    ax.imshow(p, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(T), words)
    ax.set_yticks(range(T), words)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(title)
plt.suptitle("attention weights P (each row sums to 1)")
plt.tight_layout()
plt.show()
print("causal: weights above the diagonal =", float(np.triu(maps["causal (GPT)"], 1).sum()))
print("padding: weight on the two pads =", float(maps["padding (BERT)"][:, 4:].sum()))

# %% [markdown]
# In the causal map the upper triangle is black (zero weight) and the first query can only look at
# itself; in the padding map the last two columns are black.
#
# ## Multi-head attention
# One head computes one weighting. Multi-head attention projects $x$ into $H$ smaller query/key/value
# spaces of size $D = C / H$ (one matmul for all three: `in_proj_weight` is $(3C, C)$, as in PyTorch),
# runs attention in each head independently, and merges the heads back with an output projection:
#
# $$\mathrm{MHA}(x) = \mathrm{concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\, W_O^\top,\qquad
# \mathrm{head}_h = \mathrm{Attention}(x W_{Q,h}^\top, x W_{K,h}^\top, x W_{V,h}^\top)$$
#
# Split: `(B, T, C) -> (B, T, H, D) -> (B, H, T, D)`; merge is the reverse
# (see `split_heads` / `merge_heads` in [attention.py](../minillm/nn/attention.py)).

# %%
minillm.manual_seed(0)
C, H = 16, 4
mha = MultiHeadAttention(C, H).double()
x = rng.standard_normal((1, T, C))
y = mha(x, is_causal=True)
qkv = x @ mha.in_proj_weight.data.T + mha.in_proj_bias.data          # (1, T, 3C)
heads = split_heads(qkv[..., :C], H)
print("x", x.shape, "-> q (B, H, T, D)", heads.shape, "-> y", y.shape)

att_cache = mha.cache.attention
fig, axes = plt.subplots(1, H, figsize=(14, 3.4))
for h, ax in enumerate(axes):
    ax.imshow(att_cache.probs[0, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"head {h}")
    ax.set_xticks(range(T), words, fontsize=7)
    ax.set_yticks(range(T), words, fontsize=7)
plt.suptitle("four heads, four different causal weightings of the same sentence")
plt.tight_layout()
plt.show()
mha.cache = None

# %% [markdown]
# The same layer in PyTorch, with the weights copied over, gives the same output (skipped when PyTorch
# is not installed):

# %%
try:
    import torch
    ref = torch.nn.MultiheadAttention(C, H, batch_first=True, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in mha.state_dict().items()})
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    y_ref = ref(*(torch.from_numpy(x),) * 3, attn_mask=mask, need_weights=False)[0].detach().numpy()
    print("max |minillm - torch| =", np.abs(y - y_ref).max())
except ImportError:
    print("PyTorch is not installed: comparison skipped")

# %% [markdown]
# ## The backward pass, derived
# With an upstream gradient $dO = \partial L / \partial O$ and $P = \mathrm{softmax}(S)$, $S = QK^\top/\sqrt{d}$:
#
# * $O = PV \Rightarrow dV = P^\top dO$ and $dP = dO\, V^\top$
# * softmax, row by row: $dS_{ij} = P_{ij}\,(dP_{ij} - \sum_k dP_{ik} P_{ik})$
#   (the Jacobian of softmax is $\mathrm{diag}(p) - p p^\top$)
# * $S = QK^\top/\sqrt d \Rightarrow dQ = dS\,K/\sqrt d$ and $dK = dS^\top Q/\sqrt d$
#
# This is `scaled_dot_product_attention_backward`. The check: compare it with central differences
# $\frac{L(x+h) - L(x-h)}{2h}$ in float64 ([`minillm/gradcheck/finite_differences.py`](../minillm/gradcheck/finite_differences.py)).

# %%
B, Hh, Tt, Dd = 2, 2, 5, 4
args = [rng.standard_normal((B, Hh, Tt, Dd)) for _ in range(3)]
for causal in (False, True):
    errors = gradcheck.check_pair(
        lambda q_, k_, v_: scaled_dot_product_attention(q_, k_, v_, is_causal=causal),
        lambda douts, c: scaled_dot_product_attention_backward(douts[0], c), args, wrt=(0, 1, 2))
    print(f"causal={causal}: relative errors", {n: f"{e:.1e}" for n, e in errors.items()})
    assert max(errors.values()) < gradcheck.TOLERANCE
print("gradient check passed (tolerance", gradcheck.TOLERANCE, ")")
