# %% [markdown]
# # 08 · Fused attention: the tiled online-softmax algorithm and its CUDA kernel
#
# **Article:** part 1, section 4 (the attention formula), computed the way GPUs compute it today.
# **Code:** [`minillm/nn/tiled_attention.py`](../minillm/nn/tiled_attention.py) (the algorithm in NumPy),
# [`kernels/cuda/fused_attention.cu`](../kernels/cuda/fused_attention.cu) (the same loops in CUDA),
# [`kernels/cuda/__init__.py`](../kernels/cuda/__init__.py) (loading it with `cupy.RawModule`),
# [`benchmarks/attention_gpu.py`](../benchmarks/attention_gpu.py).
#
# The plain formula builds the score matrix $S = QK^\top$ of shape $T \times T$ for every head. At
# $T = 16384$ that is 1 GiB per head in float32, and reading and writing it dominates the time.
# FlashAttention (Dao et al. 2022) never builds it: it walks over **tiles** of keys and keeps, for each
# query row, only a running maximum $m$, a running sum $\ell$ and a running output.

# %%
import numpy as np
import matplotlib.pyplot as plt
from pathlib import Path

from minillm.nn import scaled_dot_product_attention, scaled_dot_product_attention_backward

from minillm.kernels import dispatch
from minillm.nn.tiled_attention import tiled_attention_forward, tiled_attention_backward

rng = np.random.default_rng(0)

# %% [markdown]
# ## Online softmax, on one row
# Softmax needs the maximum of the whole row before it can exponentiate (to avoid overflow). The
# online version processes the row in chunks and repairs what it has summed whenever the maximum grows:
#
# $$m' = \max(m, \max_j s_j),\qquad \ell' = \ell\, e^{m - m'} + \sum_j e^{s_j - m'},\qquad
#   o' = o\, e^{m - m'} + \sum_j e^{s_j - m'} v_j$$
#
# After the last chunk, $o / \ell$ is exactly $\mathrm{softmax}(s)\,V$.

# %%
s = rng.standard_normal(12) * 3          # one row of scores
v = rng.standard_normal((12, 4))         # the values
m, l, o = -np.inf, 0.0, np.zeros(4)
history = []
for j0 in range(0, 12, 4):               # chunks of 4 keys
    chunk = s[j0:j0 + 4]
    m_new = max(m, chunk.max())
    scale_old = np.exp(m - m_new)        # 0 on the first chunk (m = -inf)
    p = np.exp(chunk - m_new)
    l = l * scale_old + p.sum()
    o = o * scale_old + p @ v[j0:j0 + 4]
    m = m_new
    history.append((j0 + 4, m, l))
    print(f"after {j0 + 4:2d} keys: running max {m:6.3f}, running sum {l:7.4f}")
p_full = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
print("online result == softmax(s) V:", np.allclose(o / l, p_full @ v))

# %% [markdown]
# ## Whole tiles, in NumPy
# `tiled_attention_forward` runs that update for a 64-row tile of queries against 64-column tiles of
# keys, exactly as each CUDA thread block does. It returns the output and the row log-sum-exp
# $L = m + \log \ell$, which is all the backward pass needs to recompute the probabilities
# $P = e^{S - L}$ tile by tile instead of storing them.

# %%
N, T, D = 3, 200, 32
q, k, v = (rng.standard_normal((N, T, D)) for _ in range(3))
for causal in (False, True):
    out_t, lse = tiled_attention_forward(q, k, v, causal=causal)
    out_p, cache = scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], is_causal=causal)
    print(f"causal={causal}: max |tiled - plain| = {np.abs(out_t - out_p[:, 0]).max():.1e}")

# %% [markdown]
# ## Memory: T x T versus one tile
# Per (batch, head), the plain path keeps the whole probability matrix for the backward pass; the fused
# path keeps $O$ and $L$ ($T \times D + T$ floats) and needs only a few $64 \times 64$ tiles at a time.

# %%
Ts = np.array([256, 1024, 4096, 16384, 65536])
plain_mib = Ts ** 2 * 4 / 2**20
fused_mib = (Ts * 64 + Ts) * 4 / 2**20
plt.figure(figsize=(6.5, 3.6))
plt.loglog(Ts, plain_mib, "o-", label="plain: P is T x T")
plt.loglog(Ts, fused_mib, "o-", label="fused: O and L, linear in T (D = 64)")
plt.xlabel("sequence length T")
plt.ylabel("MiB kept per head for the backward")
plt.legend()
plt.title("quadratic vs linear memory")
plt.show()
for t, a, b in zip(Ts, plain_mib, fused_mib):
    print(f"T = {t:6d}: plain {a:10.1f} MiB   fused {b:6.1f} MiB")

# %% [markdown]
# ## The backward, tile by tile
# With $D_i = \sum_c dO_{ic} O_{ic}$ (equal to $\sum_j dP_{ij} P_{ij}$, the softmax-backward term), each
# tile recomputes $P = e^{S - L}$, then $dV \mathrel{+}= P^\top dO$, $dP = dO\,V^\top$,
# $dS = P \odot (dP - D)$, $dK \mathrel{+}= dS^\top Q \cdot \text{scale}$ and $dQ \mathrel{+}= dS\,K \cdot \text{scale}$.
# The check: the tiled backward equals the plain one, in float64.

# %%
dout = rng.standard_normal((N, T, D))
out_t, lse = tiled_attention_forward(q, k, v, causal=True)
tiled = tiled_attention_backward(dout, q, k, v, out_t, lse, causal=True)
_, cache = scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], is_causal=True)
plain = scaled_dot_product_attention_backward(dout[:, None], cache)
for name, a, b in zip(("dq", "dk", "dv"), tiled, plain):
    print(f"{name}: max |tiled - plain| = {np.abs(a - b[:, 0]).max():.1e}")
    assert np.allclose(a, b[:, 0], atol=1e-10)

# %% [markdown]
# ## The CUDA kernel
# [`kernels/cuda/fused_attention.cu`](../kernels/cuda/fused_attention.cu) follows the same loop. A block of 256
# threads owns one (batch·head, 64-query tile); each thread computes a 4 x 4 patch of the 64 x 64 score
# tile in registers, the 16 threads that share rows reduce the row max and sum with warp shuffles, and
# scores are kept in base 2 so that `exp` is one `exp2f` instruction. Here is the heart of the forward
# loop, the online-softmax update:

# %%
src = Path("../kernels/cuda/fused_attention.cu").read_text()
start = src.index("        float s[4][4];")
end = src.index("\n", src.index("accumulate_pm<D>(acc, sPt, sV, ty, tx);", start))
print(src[start:end])

# %% [markdown]
# ## Running it
# On a machine with an NVIDIA GPU and CuPy, `minillm.use("cupy")` routes eligible attention calls
# (float32, head size up to 128, causal and/or padding masks) through this kernel. The cell below runs
# it and compares it with the plain CuPy formula when a GPU is present; otherwise it says so and shows
# the figures recorded on an H100.

# %%
try:
    import cupy
    has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:
    has_gpu = False
if has_gpu:
    import time
    import minillm
    minillm.use("cupy")
    from minillm.nn import attention
    qg, kg, vg = (cupy.asarray(rng.standard_normal((4, 8, 2048, 64)), dtype=cupy.float32) for _ in range(3))
    times = {}
    for mode in ("auto", "plain"):                               # the fused kernel, then the lesson
        import os
        os.environ["MINILLM_KERNELS"] = mode
        scaled_dot_product_attention(qg, kg, vg, is_causal=True)
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            out, _ = scaled_dot_product_attention(qg, kg, vg, is_causal=True)
        cupy.cuda.Device().synchronize()
        times[dispatch.last("scaled_dot_product_attention").implementation] = (time.perf_counter() - t0) / 10
    os.environ["MINILLM_KERNELS"] = "auto"
    print({k: f"{v * 1e3:.2f} ms" for k, v in times.items()}, f"speed-up {times['plain'] / times['cuda.attention']:.1f}x")
else:
    print("No CUDA GPU here: the kernel was not run. Recorded on an H100 (benchmarks/results/):")
    results = sorted(Path("../benchmarks/results").glob("*attention_gpu.txt"))
    lines = results[-1].read_text().splitlines() if results else []
    print("\n".join(lines[:30]))
