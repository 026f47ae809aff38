"""The fused-attention algorithm (FlashAttention, Dao et al. 2022; FA-2, Dao 2023) in NumPy.

This file is the readable twin of ``kernels/cuda/fused_attention.cu``: the same tiles,
the same loop order, the same online softmax and the same backward recomputation,
written with arrays so it runs (slowly) on the CPU and can be tested in float64
against the plain formula in ``attention.py``. Each CUDA thread block handles one
(batch*head, query tile); here the batch*head axis is vectorised instead.

Letters: N = B*H, T queries, S keys, D head size, BM / BN the query / key tile sizes.
q: (N, T, D), k, v: (N, S, D), key_padding_mask: (N, S) bool (True = pad) or None.

Forward, for one query tile Q_i (BM rows), streaming key tiles K_j, V_j:
    s   = Q_i K_j^T * scale                      (BM, BN), never (T, S)
    m'  = max(m, rowmax(s))                      running row maximum
    p   = exp(s - m')                            this tile's unnormalised weights
    l   = l * exp(m - m') + rowsum(p)            running row sum, rescaled to the new max
    acc = acc * exp(m - m') + p V_j              running output, rescaled the same way
    m   = m'
  out = acc / l,   L = m + log(l)  (the row log-sum-exp, all the backward needs)

Backward, with Dv = rowsum(dO * O) (= rowsum(dP * P), the softmax-backward term), one pass
over key tiles j, each looping over query tiles i:
    p  = exp(s - L)                              recomputed from L: exact probabilities
    dV_j += p^T dO_i;   dp = dO_i V_j^T;   ds = p * (dp - Dv_i)
    dK_j += ds^T Q_i * scale;   dQ_i += ds K_j * scale
"""
import math

from .. import backend


def _tile_scores(q_i, k_j, scale, rows, cols, causal, kpm_j, xp):
    """Masked scores of one tile: (N, BM, D) x (N, D, BN) -> (N, BM, BN); masked entries = -inf."""
    s = (q_i @ k_j.swapaxes(1, 2)) * scale
    if causal:
        s = xp.where(cols[None, None, :] <= rows[None, :, None], s, -xp.inf)
    if kpm_j is not None:
        s = xp.where(kpm_j[:, None, :], -xp.inf, s)
    return s


def tiled_attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None, block_m=64, block_n=64):
    """Returns out (N, T, D) and the row log-sum-exp L (N, T) (+inf for a fully masked row)."""
    xp = backend.get_array_module(q)
    N, T, D = q.shape
    S = k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    out = xp.empty_like(q)
    lse = xp.empty((N, T), dtype=q.dtype)
    for m0 in range(0, T, block_m):                                   # one thread block per query tile
        rows = xp.arange(m0, min(m0 + block_m, T))
        q_i = q[:, m0:m0 + block_m]
        m = xp.full((N, len(rows)), -xp.inf, dtype=q.dtype)          # running max
        l = xp.zeros((N, len(rows)), dtype=q.dtype)                   # running sum
        acc = xp.zeros((N, len(rows), D), dtype=q.dtype)              # running output
        n_end = min(S, m0 + block_m) if causal else S                  # causal: later keys are all masked
        for n0 in range(0, n_end, block_n):
            cols = xp.arange(n0, min(n0 + block_n, S))
            kpm_j = None if key_padding_mask is None else key_padding_mask[:, n0:n0 + block_n]
            s = _tile_scores(q_i, k[:, n0:n0 + block_n], scale, rows, cols, causal, kpm_j, xp)
            m_new = xp.maximum(m, s.max(axis=2))
            m_safe = xp.where(xp.isfinite(m_new), m_new, 0)           # all -inf so far: keep exp() at 0
            alpha = xp.exp(m - m_safe)
            p = xp.exp(s - m_safe[:, :, None])
            l = l * alpha + p.sum(axis=2)
            acc = acc * alpha[:, :, None] + p @ v[:, n0:n0 + block_n]
            m = m_new
        empty = l == 0                                                 # every key masked
        out[:, m0:m0 + block_m] = acc / xp.where(empty, 1, l)[:, :, None]
        lse[:, m0:m0 + block_m] = xp.where(empty, xp.inf, m + xp.log(xp.where(empty, 1, l)))
    return out, lse


def tiled_attention_backward(dout, q, k, v, out, lse, causal=False, key_padding_mask=None, scale=None,
                             block_m=64, block_n=64, dq_mode="atomic"):
    """Returns dq (N, T, D), dk, dv (N, S, D), in the kernel's loop order.

    dq_mode "atomic" (the kernel's default, FlashAttention-2): one pass over key tiles; each adds its
    share to dQ (on the GPU with atomicAdd, since many blocks write the same rows). "two_pass": a
    second pass over query tiles computes dQ on its own (deterministic, two more tile products).
    """
    xp = backend.get_array_module(q)
    N, T, D = q.shape
    S = k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    Dv = (dout * out).sum(axis=2)                                      # (N, T)
    dq, dk, dv = xp.zeros_like(q), xp.zeros_like(k), xp.zeros_like(v)

    def probs(m0, n0):
        rows = xp.arange(m0, min(m0 + block_m, T))
        cols = xp.arange(n0, min(n0 + block_n, S))
        kpm_j = None if key_padding_mask is None else key_padding_mask[:, n0:n0 + block_n]
        s = _tile_scores(q[:, m0:m0 + block_m], k[:, n0:n0 + block_n], scale, rows, cols, causal, kpm_j, xp)
        p = xp.exp(s - lse[:, m0:m0 + block_m, None])                  # exact softmax, recomputed
        dp = dout[:, m0:m0 + block_m] @ v[:, n0:n0 + block_n].swapaxes(1, 2)
        return p, p * (dp - Dv[:, m0:m0 + block_m, None])

    for n0 in range(0, S, block_n):                                    # pass 1: one block per key tile
        m_start = (n0 // block_m) * block_m if causal else 0           # causal: earlier queries never see these keys
        for m0 in range(m_start, T, block_m):
            p, ds = probs(m0, n0)
            dv[:, n0:n0 + block_n] += p.swapaxes(1, 2) @ dout[:, m0:m0 + block_m]
            dk[:, n0:n0 + block_n] += (ds.swapaxes(1, 2) @ q[:, m0:m0 + block_m]) * scale
            if dq_mode == "atomic":
                dq[:, m0:m0 + block_m] += (ds @ k[:, n0:n0 + block_n]) * scale
    if dq_mode == "atomic":
        return dq, dk, dv
    for m0 in range(0, T, block_m):                                    # pass 2: one block per query tile
        n_end = min(S, m0 + block_m) if causal else S
        for n0 in range(0, n_end, block_n):
            _, ds = probs(m0, n0)
            dq[:, m0:m0 + block_m] += (ds @ k[:, n0:n0 + block_n]) * scale
    return dq, dk, dv
