"""Scaled dot-product attention on the CPU: the lesson's formula (minillm/nn/attention.py),
rearranged so the (B, H, T, S) arrays are touched fewer times.

- the scale is applied to q (B, H, T, D) instead of the scores (B, H, T, S): the same product,
  one smaller pass (D < S in every model here);
- the score matrix is turned into the weights in place (s -> s - max -> exp -> p), masked
  scores added as a small (T, S) array of 0 / -inf;
- the softmax denominators are BLAS row sums (reductions.py);
- the products over all (batch, head) pairs are one BLAS call each where batched_matmul.py can
  make them one;
- backward: rowsum(dp * p)_i = sum_j p_ij (dout_i . v_j) = dout_i . out_i, so it comes from the
  (B, H, T, D) arrays dout and out instead of the (B, H, T, S) ones (as FlashAttention-2 does),
  and dp becomes ds in place;
- with Numba, and no attn_mask other than causal / key padding, the weights are one compiled loop
  per score row (the maximum, exp(s - m) and its sum, the quotient: the row stays in cache; exp is
  vector_exp's), and ds = p (dp - rowsum(dout * out)) another.
"""
from typing import NamedTuple

import numpy as np

from minillm.nn.attention import build_mask

from . import numpy_float
from .batched_matmul import matmul
from .jit import SERIAL_BELOW, compiled, prange, unavailable
from .reductions import sum_rows
from .vector_exp import exp
from .vector_max import row_max


class AttentionCPUCache(NamedTuple):
    q_scaled: np.ndarray       # (B, H, T, D) q * scale
    k: np.ndarray              # (B, H, S, D)
    v: np.ndarray              # (B, H, S, D)
    probs: np.ndarray          # (B, H, T, S)
    probs_dropped: np.ndarray  # (B, H, T, S)
    out: np.ndarray            # (B, H, T, D) the forward's output
    dropout_mask: object
    dropout_p: float
    scale: float

    def backward(self, dout):
        return backward(dout, self)


def accepts(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p):
    """None for float NumPy arrays."""
    return numpy_float("q", q)


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _weights_rows(s, pad, has_pad, causal, empty, zero):
    """s (B, H, T, S) scores -> softmax weights in place, per row: keys j > i masked when causal
    (an end column per row, so the loops have no branch), padded keys (pad (B, S) True) masked;
    p = exp(s - m) / sum, m the row's maximum over its keys; a row with every key masked is 0.
    empty = -inf and zero = 0 of the scores' dtype."""
    B, H, T, S = s.shape
    for n in prange(B * H):
        b, h = n // H, n % H
        for t in range(T):
            end = min(S, t + 1) if causal else S
            if has_pad:
                for c in range(end):
                    if pad[b, c]:
                        s[b, h, t, c] = empty
            top = row_max(s[b, h, t], end, empty)   # over integer keys: in vector registers
            total = zero
            if top != empty:
                for c in range(end):
                    e = exp(s[b, h, t, c] - top)
                    s[b, h, t, c] = e
                    total += e
                for c in range(end):
                    s[b, h, t, c] = s[b, h, t, c] / total
            else:
                for c in range(end):
                    s[b, h, t, c] = zero
            for c in range(end, S):
                s[b, h, t, c] = zero


@compiled(serial_below=SERIAL_BELOW)
def _score_gradient_rows(dp, rowdot, p):
    """dp (B, H, T, S) -> ds = p (dp - rowdot) in place, rowdot (B, H, T)."""
    B, H, T, S = dp.shape
    for n in prange(B * H):
        b, h = n // H, n % H
        for t in range(T):
            d = rowdot[b, h, t]
            for c in range(S):
                dp[b, h, t, c] = p[b, h, t, c] * (dp[b, h, t, c] - d)


def _compiled_weights(s, attn_mask, key_padding_mask=None):
    """True when _weights_rows computes these weights: Numba, a contiguous float NumPy score array,
    no attn_mask (causal and key padding are its own masks) and a (B, S) key-padding mask if any."""
    if attn_mask is not None or unavailable(s=s) is not None or not s.flags.c_contiguous:
        return False
    return key_padding_mask is None or tuple(key_padding_mask.shape) == (s.shape[0], s.shape[3])


def _weights_numpy(s, attn_mask, key_padding_mask, is_causal):
    """s (B, H, T, S) scores -> softmax weights in place, any mask, by NumPy operations."""
    allowed, additive = build_mask(attn_mask, key_padding_mask, is_causal, s.shape, np)
    if additive is not None:
        s += additive
    if allowed is not None:
        s += np.where(allowed, s.dtype.type(0), s.dtype.type(-np.inf))
    m = s.max(axis=-1, keepdims=True)                               # (B,H,T,1)
    masked = key_padding_mask is not None or attn_mask is not None   # only these can block a whole row
    if masked:
        m[~np.isfinite(m)] = 0
    s -= m
    p = np.exp(s, out=s)
    denom = sum_rows(p)
    if masked:
        denom[denom == 0] = 1
    p /= denom
    return p


def forward(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p, dropout_mask, scale):
    """out = softmax(q k^T * scale + mask) v, the weights built in place."""
    qs = q * q.dtype.type(scale)                                    # (B,H,T,D)
    s = matmul(qs, k.swapaxes(-1, -2))                              # (B,H,T,S)
    if _compiled_weights(s, attn_mask, key_padding_mask):
        pad = np.zeros((1, 1), dtype=bool) if key_padding_mask is None else np.asarray(key_padding_mask, dtype=bool)
        t = s.dtype.type
        _weights_rows(s, pad, key_padding_mask is not None, bool(is_causal), t(-np.inf), t(0))
        p = s
    else:
        p = _weights_numpy(s, attn_mask, key_padding_mask, is_causal)
    pd = p
    if dropout_p > 0:
        pd = p * dropout_mask * (1.0 / (1.0 - dropout_p))
    out = matmul(pd, v)                                             # (B,H,T,D)
    return out, AttentionCPUCache(qs, k, v, p, pd, out, dropout_mask, dropout_p, scale)


def backward(dout, cache):
    """dq, dk, dv: the lesson's backward with rowsum(dp * p) = rowsum(dout * out)."""
    qs, k, v, p, pd, o, mask, dropout_p, scale = cache
    dv = matmul(pd.swapaxes(-1, -2), dout)
    dp = matmul(dout, v.swapaxes(-1, -2))
    if dropout_p > 0:
        dp *= mask * (1.0 / (1.0 - dropout_p))
    rowdot = np.einsum("...d,...d->...", dout, o)                   # rowsum(dp * p) = rowsum(dout * out)
    ds = dp                                                         # dp becomes ds in place
    if _compiled_weights(ds, None) and rowdot.dtype == ds.dtype and p.flags.c_contiguous:
        _score_gradient_rows(ds, rowdot, p)
    else:
        ds -= rowdot[..., None]
        ds *= p
    dq = matmul(ds, k)
    dq *= scale
    dk = matmul(ds.swapaxes(-1, -2), qs)                            # = ds^T q * scale
    return dq, dk, dv
