"""Softmax and log-softmax along the last axis as compiled loops over the rows (Numba).

The lesson (minillm/nn/activations.py) makes a new array for each step (x - m, exp, the sum, the
quotient). Here each row of V values is read and written by a few passes, into one output array:

    softmax:      e = x - m  (pass 1: the row maximum m, then the shift),   e = exp(e)  (NumPy),
                  p = e / sum e                                              (pass 2)
    log-softmax:  z = x - m  (pass 1),   e = exp(z)  (NumPy, a second array),
                  s = sum e,   out = z - log s                          (pass 2)

    backward:     softmax      dx = p (dout - sum(dout p))              one pass per row
                  log-softmax  dx = dout - (e / s) sum(dout)            one pass per row

The log-softmax keeps e and s from its forward (the lesson keeps out and exponentiates it again),
so neither backward calls exp.

The exp is NumPy's vectorised one (Numba's calls the C library once per element). Other axes,
an empty last axis and non-NumPy arrays run the lesson code.
"""
from typing import NamedTuple

import numpy as np

from .jit import SERIAL_BELOW, compiled, prange, unavailable


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


@compiled(serial_below=SERIAL_BELOW)
def _shift_rows(x, out):
    """out = x - rowmax(x)."""
    N, V = x.shape
    for i in prange(N):
        top = x[i, 0]
        for c in range(V):
            top = max(top, x[i, c])
        for c in range(V):
            out[i, c] = x[i, c] - top


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _divide_by_row_sums(e):
    """e = e / rowsum(e) in place."""
    N, V = e.shape
    for i in prange(N):
        s = e[i, 0] - e[i, 0]
        for c in range(V):
            s += e[i, c]
        for c in range(V):
            e[i, c] = e[i, c] / s


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _subtract_log_row_sums(z, e, sums):
    """sums = rowsum(e), z = z - log(sums) in place; e = exp(z)."""
    N, V = z.shape
    for i in prange(N):
        s = e[i, 0] - e[i, 0]
        for c in range(V):
            s += e[i, c]
        sums[i] = s
        log_s = np.log(s)
        for c in range(V):
            z[i, c] = z[i, c] - log_s


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
    _shift_rows(x2, out)
    if log:
        e, sums = np.exp(out), np.empty(out.shape[0], dtype=out.dtype)
        _subtract_log_row_sums(out, e, sums)
        return out.reshape(x.shape), FusedSoftmaxCache(e, sums, x.shape)
    np.exp(out, out=out)
    _divide_by_row_sums(out)
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
