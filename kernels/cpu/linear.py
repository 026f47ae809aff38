"""Linear on the CPU: the lesson's linear_forward (minillm/nn/linear.py), with the bias
gradient sum_n dout as the BLAS product ones(N) @ dout (reductions.py)."""
from typing import NamedTuple

import numpy as np

from . import numpy_float
from .reductions import sum_columns


class LinearCPUCache(NamedTuple):
    x2: np.ndarray        # (N, C)
    weight: np.ndarray    # (O, C)
    has_bias: bool
    x_shape: tuple

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, weight, bias):
    """None for float NumPy arrays."""
    return numpy_float("x", x)


def forward(x, weight, bias=None):
    """out = x W^T + b, the bias added in place."""
    x2 = x.reshape(-1, x.shape[-1])                      # (..., C) -> (N, C)
    out = x2 @ weight.T                                   # (N, O)
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCPUCache(x2, weight, bias is not None, x.shape)


def backward(dout, cache):
    """dx = dout W, dW = dout^T x, db = ones(N) @ dout."""
    x2, weight, has_bias, x_shape = cache
    d2 = dout.reshape(-1, weight.shape[0])
    dx = (d2 @ weight).reshape(x_shape)
    dweight = d2.T @ x2
    dbias = sum_columns(d2) if has_bias else None
    return dx, dweight, dbias
