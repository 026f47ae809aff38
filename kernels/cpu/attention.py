"""Scaled dot-product attention on the CPU: the lesson's formula (minillm/nn/attention.py),
rearranged so the (B, H, T, S) arrays are touched fewer times.

- the scale is applied to q (B, H, T, D) instead of the scores (B, H, T, S): the same product,
  one smaller pass (D < S in every model here);
- the score matrix is turned into the weights in place (s -> s - max -> exp -> p), masked
  scores added as a small (T, S) array of 0 / -inf;
- the softmax denominators are BLAS row sums (reductions.py);
- backward: rowsum(dp * p)_i = sum_j p_ij (dout_i . v_j) = dout_i . out_i, so it comes from the
  (B, H, T, D) arrays dout and out instead of the (B, H, T, S) ones (as FlashAttention-2 does),
  and dp becomes ds in place.
"""
from typing import NamedTuple

import numpy as np

from minillm.nn.attention import build_mask

from . import numpy_float
from .reductions import sum_rows


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


def forward(q, k, v, attn_mask, is_causal, key_padding_mask, dropout_p, dropout_mask, scale):
    """out = softmax(q k^T * scale + mask) v, the weights built in place."""
    B, H, T, D = q.shape
    S = k.shape[2]
    allowed, additive = build_mask(attn_mask, key_padding_mask, is_causal, (B, H, T, S), np)
    qs = q * q.dtype.type(scale)                                    # (B,H,T,D)
    s = qs @ k.swapaxes(-1, -2)                                     # (B,H,T,S)
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
    pd = p
    if dropout_p > 0:
        pd = p * dropout_mask * (1.0 / (1.0 - dropout_p))
    out = pd @ v                                                    # (B,H,T,D)
    return out, AttentionCPUCache(qs, k, v, p, pd, out, dropout_mask, dropout_p, scale)


def backward(dout, cache):
    """dq, dk, dv: the lesson's backward with rowsum(dp * p) = rowsum(dout * out)."""
    qs, k, v, p, pd, o, mask, dropout_p, scale = cache
    dv = pd.swapaxes(-1, -2) @ dout
    dp = dout @ v.swapaxes(-1, -2)
    if dropout_p > 0:
        dp *= mask * (1.0 / (1.0 - dropout_p))
    ds = dp                                                         # dp becomes ds in place
    ds -= np.einsum("...d,...d->...", dout, o)[..., None]           # rowsum(dp * p) = rowsum(dout * out)
    ds *= p
    dq = ds @ k
    dq *= scale
    dk = ds.swapaxes(-1, -2) @ qs                                   # = ds^T q * scale
    return dq, dk, dv
