"""Softmax cross-entropy as compiled loops over the rows (Numba), the softmax kept once.

The lesson (minillm/nn/loss.py) keeps log softmax(z) and exponentiates it again in the backward.
Here the forward keeps the normalised softmax p itself, once, and the backward is one pass:

    forward, per row:  m = max z,  e = exp(z - m) (vector_exp.exp),  s = sum e,
                       log p_y = (z_y - m) - log s,   sum_c log p_c = sum_c (z_c - m) - V log s,
                       loss_n = -(1 - eps) log p_y - eps/V sum_c log p_c,   p = e / s
    backward:          dz = dloss (p - (1 - eps) onehot(y) - eps/V) / count  on valid rows, 0 elsewhere
"""
from typing import NamedTuple

import numpy as np

from .jit import SERIAL_BELOW, compiled, prange, unavailable
from .vector_exp import exp
from .vector_max import row_max


class FusedCrossEntropyCache(NamedTuple):
    p: np.ndarray          # (N, V) softmax of the logits
    targets: np.ndarray    # (N,) ids, ignored ones replaced by 0
    valid: np.ndarray      # (N,) bool
    count: int
    label_smoothing: float
    logits_shape: tuple

    def backward(self, dloss):
        return backward(self, dloss)


def accepts(logits, targets, ignore_index, label_smoothing):
    """None for NumPy float logits, with Numba installed."""
    return unavailable(logits=logits)


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _softmax_rows(z, y, valid, k, p, nll):
    """Per row: m = max z, e = exp(z - m), s = sum e, p = e / s (kept for the backward) and
    nll = -keep log p_y - smooth sum_c log p_c (0 where the target is ignored)."""
    N, V = z.shape
    keep, smooth = k[0], k[1]
    for i in prange(N):
        top = row_max(z[i], V, z[i, 0])          # over integer keys: in vector registers
        shifted_sum = top - top       # sum_c (z_c - m), a zero of z's dtype
        s = top - top
        for c in range(V):
            d = z[i, c] - top
            shifted_sum += d
            e = exp(d)
            p[i, c] = e
            s += e
        log_s = np.log(s)
        if valid[i]:
            nll[i] = -keep * ((z[i, y[i]] - top) - log_s) - smooth * (shifted_sum - V * log_s)
        else:
            nll[i] = s - s
        inv = 1 / s
        for c in range(V):
            p[i, c] = p[i, c] * inv


@compiled(serial_below=SERIAL_BELOW)
def _gradient_rows(p, y, valid, k, dz):
    """dz = scale (p - keep onehot(y) - smooth) on valid rows, 0 on ignored ones."""
    N, V = p.shape
    keep, smooth, scale = k[0], k[1], k[2]
    for i in prange(N):
        if valid[i]:
            for c in range(V):
                dz[i, c] = (p[i, c] - smooth) * scale
            dz[i, y[i]] -= keep * scale
        else:
            for c in range(V):
                dz[i, c] = scale - scale


def forward(logits, targets, ignore_index=-100, label_smoothing=0.0):
    """Scalar loss (0-d array of the logits' dtype) and the cache; logits: (..., V), targets: (...)."""
    V = logits.shape[-1]
    z = np.ascontiguousarray(logits).reshape(-1, V)
    y = np.asarray(targets).reshape(-1)
    valid = y != ignore_index
    y_safe = np.where(valid, y, 0).astype(np.int64)
    p, nll = np.empty_like(z), np.empty(z.shape[0], z.dtype)
    k = np.array([1.0 - label_smoothing, label_smoothing / V], dtype=z.dtype)
    _softmax_rows(z, y_safe, valid, k, p, nll)
    count = max(int(valid.sum()), 1)            # all targets ignored: loss 0 and no gradient (as the lesson)
    loss = nll.sum() / z.dtype.type(count)
    return np.asarray(loss, dtype=z.dtype), FusedCrossEntropyCache(p, y_safe, valid, count, label_smoothing,
                                                                   logits.shape)


def backward(cache, dloss=1.0):
    """dlogits, the logits' shape."""
    p, y, valid, count, eps, shape = cache
    V = p.shape[1]
    dz = np.empty_like(p)
    _gradient_rows(p, y, valid, np.array([1.0 - eps, eps / V, dloss / count], dtype=p.dtype), dz)
    return dz.reshape(shape)
