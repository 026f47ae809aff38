"""LayerNorm as one compiled loop per row (Numba), the rows shared between threads.

Forward, for each row x (C values): one pass gives the mean and the variance from sums of the
row shifted by its first value, a = x - x_0 (sum(a) and sum(a^2) do not cancel the way sum(x^2)
- C mean^2 does when the mean is large), then one pass writes

    xhat = (x - mean) * rstd,   rstd = 1 / sqrt(var + eps),   out = xhat * weight + bias.

Backward, one pass per row for its two means and one for dx (the lesson's three terms),

    dxhat = dout * weight,   dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) * rstd,

while dweight = sum_rows(dout * xhat) and dbias = sum_rows(dout) are summed by each thread into
its own row of a (threads, C) array, added up at the end (no two threads write one number).
"""
from typing import NamedTuple

import numpy as np

from .jit import SERIAL_BELOW, compiled, prange, threads, unavailable


class FusedLayerNormCache(NamedTuple):
    xhat: np.ndarray      # (N, C) normalised input
    rstd: np.ndarray      # (N,) 1 / sqrt(var + eps)
    weight: np.ndarray    # (C,)
    shape: tuple          # the input's shape (..., C)

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, weight, bias, eps):
    """None for NumPy float arrays of one dtype, with Numba installed."""
    return unavailable(x=x, weight=weight, bias=bias)


# Numba types int / float32 as float64 (NumPy's rules), so every constant arrives as an argument
# of the arrays' dtype (inv_c = 1 / C, one = 1): float32 rows are computed in float32 throughout.
@compiled(sums=True, serial_below=SERIAL_BELOW)
def _forward_rows(x, weight, bias, eps, inv_c, one, out, xhat, rstd):
    N, C = x.shape
    for i in prange(N):
        x0 = x[i, 0]
        s = x0 - x0                   # zero of x's dtype: float32 sums stay float32
        ss = x0 - x0
        for c in range(C):
            a = x[i, c] - x0
            s += a
            ss += a * a
        shift_mean = s * inv_c
        var = ss * inv_c - shift_mean * shift_mean
        if var < 0:                   # rounding of a constant row
            var = var - var
        r = one / np.sqrt(var + eps)
        mean = x0 + shift_mean
        rstd[i] = r
        for c in range(C):
            h = (x[i, c] - mean) * r
            xhat[i, c] = h
            out[i, c] = h * weight[c] + bias[c]


@compiled(sums=True, serial_below=SERIAL_BELOW)
def _backward_rows(dout, xhat, rstd, weight, inv_c, dx, dweight_parts, dbias_parts):
    N, C = dout.shape
    parts = dweight_parts.shape[0]
    for p in prange(parts):
        for i in range(p * N // parts, (p + 1) * N // parts):
            z = dout[i, 0] - dout[i, 0]
            a = z
            b = z
            for c in range(C):
                g = dout[i, c] * weight[c]
                a += g
                b += g * xhat[i, c]
                dweight_parts[p, c] += dout[i, c] * xhat[i, c]
                dbias_parts[p, c] += dout[i, c]
            a = a * inv_c
            b = b * inv_c
            for c in range(C):
                dx[i, c] = (dout[i, c] * weight[c] - a - xhat[i, c] * b) * rstd[i]


def forward(x, weight, bias, eps=1e-5):
    """out = (x - mean) * rstd * weight + bias, x: (..., C) -> (..., C)."""
    C = x.shape[-1]
    x2 = np.ascontiguousarray(x).reshape(-1, C)
    out, xhat = np.empty_like(x2), np.empty_like(x2)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    t = x.dtype.type
    _forward_rows(x2, np.ascontiguousarray(weight), np.ascontiguousarray(bias), t(eps), t(1.0 / C), t(1), out, xhat, rstd)
    return out.reshape(x.shape), FusedLayerNormCache(xhat, rstd, weight, x.shape)


def backward(dout, cache):
    """dx (..., C), dweight (C,), dbias (C,)."""
    xhat, rstd, weight, shape = cache
    C = shape[-1]
    d2 = np.ascontiguousarray(dout).reshape(-1, C)
    dx = np.empty_like(d2)
    parts = max(1, min(threads(), d2.shape[0]))
    dweight_parts = np.zeros((parts, C), dtype=d2.dtype)
    dbias_parts = np.zeros((parts, C), dtype=d2.dtype)
    _backward_rows(d2, xhat, rstd, np.ascontiguousarray(weight), d2.dtype.type(1.0 / C), dx, dweight_parts, dbias_parts)
    return dx.reshape(shape), dweight_parts.sum(axis=0), dbias_parts.sum(axis=0)
