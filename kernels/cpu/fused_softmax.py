"""Softmax and log-softmax along the last axis as compiled loops over the rows (Numba).

The lesson (minillm/nn/activations.py) makes a new array for each step (x - m, exp, the sum, the
quotient). Here one compiled loop per row of V values does them all, writing one output array:

    softmax:      m = max x,   e = exp(x - m),   s = sum e,   p = e / s
    log-softmax:  m = max x,   e = exp(x - m),   s = sum e,   out = (x - m) - log s

    backward:     softmax      dx = p (dout - sum(dout p))
                  log-softmax  dx = dout - (e / s) sum(dout)

The exp is vector_exp.exp (float32: a polynomial in vector registers). The log-softmax keeps e
and s from its forward (the lesson keeps out and exponentiates it again), so neither backward
calls exp. Other axes, an empty last axis and non-NumPy arrays run the lesson code.
"""
from typing import NamedTuple

import numpy as np

from .jit import SERIAL_BELOW, compiled, prange, unavailable
from .vector_exp import exp
from .vector_max import row_max


class FusedSoftmaxCache(NamedTuple):
    e: np.ndarray          # (N, V) softmax: p; log-softmax: exp(x - m)
    s: object              # log-softmax: (N,) the row sums of e; softmax: None
    shape: tuple           # the input's shape (..., V)

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, axis):
    """None for a NumPy float array along its last axis, with Numba installed."""
    reason = unavailable(x=x)
    if reason:
        return reason
    if axis not in (-1, x.ndim - 1):
        return f"axis {axis} is not the last axis of a {x.ndim}-d array"
    if x.ndim == 0 or x.shape[-1] == 0:
        return f"shape {x.shape} has no values along the last axis"
    return None


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _softmax_rows(x, p):
    """p = exp(x - m) / sum exp(x - m) per row, m = rowmax(x)."""
    N, V = x.shape
    for i in prange(N):
        top = row_max(x[i], V, x[i, 0])          # over integer keys: in vector registers
        s = top - top                 # a zero of x's dtype
        for c in range(V):
            e = exp(x[i, c] - top)
            p[i, c] = e
            s += e
        for c in range(V):
            p[i, c] = p[i, c] / s


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _log_softmax_rows(x, out, e, sums):
    """e = exp(x - m), sums = rowsum(e), out = (x - m) - log(sums) per row, m = rowmax(x)."""
    N, V = x.shape
    for i in prange(N):
        top = row_max(x[i], V, x[i, 0])          # over integer keys: in vector registers
        s = top - top
        for c in range(V):
            ec = exp(x[i, c] - top)
            e[i, c] = ec
            s += ec
        sums[i] = s
        log_s = np.log(s)
        for c in range(V):
            out[i, c] = (x[i, c] - top) - log_s


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _softmax_backward_rows(dout, p, dx):
    """dx = p (dout - rowsum(dout p))."""
    N, V = p.shape
    for i in prange(N):
        s = p[i, 0] - p[i, 0]
        for c in range(V):
            s += dout[i, c] * p[i, c]
        for c in range(V):
            dx[i, c] = p[i, c] * (dout[i, c] - s)


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _log_softmax_backward_rows(dout, e, sums, dx):
    """dx = dout - (e / sums) rowsum(dout)."""
    N, V = e.shape
    for i in prange(N):
        t = dout[i, 0] - dout[i, 0]
        for c in range(V):
            t += dout[i, c]
        k = t / sums[i]
        for c in range(V):
            dx[i, c] = dout[i, c] - e[i, c] * k


def forward(x, log=False):
    """softmax (log=False) or log-softmax (log=True) of x: (..., V) along V -> (..., V), cache."""
    V = x.shape[-1]
    x2 = np.ascontiguousarray(x).reshape(-1, V)
    out = np.empty_like(x2)
    if log:
        e, sums = np.empty_like(x2), np.empty(x2.shape[0], dtype=x2.dtype)
        _log_softmax_rows(x2, out, e, sums)
        return out.reshape(x.shape), FusedSoftmaxCache(e, sums, x.shape)
    _softmax_rows(x2, out)
    return out.reshape(x.shape), FusedSoftmaxCache(out, None, x.shape)


def backward(dout, cache):
    """dx, the input's shape."""
    e, sums, shape = cache
    d2 = np.ascontiguousarray(dout).reshape(e.shape)
    dx = np.empty(e.shape, dtype=np.result_type(d2.dtype, e.dtype))        # as the lesson's p * dout
    if sums is None:
        _softmax_backward_rows(d2, e, dx)
    else:
        _log_softmax_backward_rows(d2, e, sums, dx)
    return dx.reshape(shape)
