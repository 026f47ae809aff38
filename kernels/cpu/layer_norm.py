"""LayerNorm on the CPU: the lesson's formula (minillm/nn/norm.py) with fewer passes.

- both row means (of x and of (x - mean)^2) as BLAS products instead of NumPy reductions;
- xhat is normalised in place, and the backward reuses one scratch array;
- the backward's two row means are matrix-vector products with the weight:
  mean_c(dout * w) = (dout @ w) / C and mean_c(dout * w * xhat) = ((dout * xhat) @ w) / C.
"""
from typing import NamedTuple

import numpy as np

from . import numpy_float
from .reductions import sum_columns, sum_rows


class LayerNormCPUCache(NamedTuple):
    xhat: np.ndarray      # (..., C) normalised input
    rstd: np.ndarray      # (..., 1) 1 / sqrt(var + eps)
    weight: np.ndarray    # (C,)

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, weight, bias, eps):
    """None for float NumPy arrays of one dtype."""
    return numpy_float("x", x) or (None if weight.dtype == x.dtype == bias.dtype else "mixed dtypes")


def forward(x, weight, bias, eps=1e-5):
    """out = (x - mean) * rstd * weight + bias, x: (..., C) -> (..., C)."""
    inv_c = 1.0 / x.shape[-1]
    mean = sum_rows(x) * inv_c                                             # (..., 1)
    xhat = x - mean
    rstd = 1.0 / np.sqrt(np.einsum("...c,...c->...", xhat, xhat)[..., None] * inv_c + eps)   # (..., 1)
    xhat *= rstd
    out = xhat * weight
    out += bias
    return out, LayerNormCPUCache(xhat, rstd, weight)


def backward(dout, cache):
    """dx (..., C), dweight (C,), dbias (C,): the three terms of the lesson's backward."""
    xhat, rstd, weight = cache
    C = xhat.shape[-1]
    d2, x2 = dout.reshape(-1, C), xhat.reshape(-1, C)                      # (N, C)
    dbias = sum_columns(d2)
    t = d2 * x2                                                            # dout * xhat
    dweight = sum_columns(t)
    mean_dxhat = (d2 @ weight)[:, None] / C                                # mean_c(dxhat)         (N, 1)
    proj = (t @ weight)[:, None] / C                                       # mean_c(dxhat * xhat)  (N, 1)
    dx = d2 * weight                                                       # dxhat, then in place
    dx -= mean_dxhat
    dx -= np.multiply(x2, proj, out=t)
    dx *= rstd.reshape(-1, 1)
    return dx.reshape(dout.shape), dweight, dbias
