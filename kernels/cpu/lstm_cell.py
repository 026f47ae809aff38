"""One LSTM step on the CPU: the lesson's step (minillm/nn/lstm.py) computed in columns.

Inside, vectors are columns as in the textbook, a = W_ih x + W_hh h + b: (4H, B), because BLAS
runs a tall W_hh times a thin h faster than the transpose at these shapes, and each gate is then
a contiguous block of rows. All four gates come from one exp: sigmoid(z) = 1 / (1 + e^-z) for
i, f, o and tanh(z) = 2 sigmoid(2z) - 1 for g (NumPy's float32 exp costs about half its tanh).
For very negative z, e^-z overflows to inf and the sigmoid is exactly 0, its right limit: the
warning is silenced.
"""
from typing import NamedTuple

import numpy as np

from . import numpy_float


class LSTMCellCPUCache(NamedTuple):
    x: np.ndarray           # (B, I)
    h: np.ndarray           # (B, H)
    w_ih: np.ndarray
    w_hh: np.ndarray
    pointwise: tuple        # (gates (4H, B), c (H, B), tanh(c') (H, B))

    def backward(self, dh_next, dc_next):
        return backward(dh_next, dc_next, self)


def accepts(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """None for float NumPy arrays."""
    return numpy_float("x", x)


def lstm_pointwise_forward(a, c):
    """From pre-activations a: (4H, B) and cell c: (H, B) to (h', c'); the cache keeps the gate values.

    ``a`` is overwritten with the gate values [i, f, g, o] (callers pass a fresh array); the
    one-exp form is described at the top of this file.
    """
    H = c.shape[0]
    np.negative(a, out=a)
    a[2 * H:3 * H] *= 2.0                                          # g rows: -2z
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1.0
    gates = np.divide(1.0, a, out=a)                               # sigmoid(z) | g rows: sigmoid(2z)
    gates[2 * H:3 * H] *= 2.0
    gates[2 * H:3 * H] -= 1.0                                      # g = tanh(z)
    i, f, g, o = (gates[k * H:(k + 1) * H] for k in range(4))
    c_next = f * c
    c_next += i * g
    tc = np.tanh(c_next)
    return o * tc, c_next, (gates, c, tc)


def lstm_pointwise_backward(dh_next, dc_next, cache, out=None):
    """Given dL/dh', dL/dc' (H, B), return da (4H, B) (written into ``out`` if given) and dc (H, B).

    h' = o * tanh(c')   =>  do = dh' * tanh(c'),   dc' += dh' * o * (1 - tanh(c')^2)
    c' = f * c + i * g  =>  df = dc' * c,  di = dc' * g,  dg = dc' * i,  dc = dc' * f
    then through the activations: sigmoid' = s (1 - s) for i, f, o;  tanh' = 1 - g^2 for g
    """
    gates, c, tc = cache
    H = c.shape[0]
    i, f, g, o = (gates[k * H:(k + 1) * H] for k in range(4))
    dc_total = dh_next * o
    dc_total *= 1.0 - tc * tc
    dc_total += dc_next
    da = np.empty_like(gates) if out is None else out
    np.multiply(dc_total, g, out=da[:H])                           # d i
    np.multiply(dc_total, c, out=da[H:2 * H])                      # d f
    np.multiply(dc_total, i, out=da[2 * H:3 * H])                  # d g
    np.multiply(dh_next, tc, out=da[3 * H:])                       # d o
    slope = gates * (1.0 - gates)                                  # s (1 - s): right for i, f, o
    slope[2 * H:3 * H] = 1.0 - g * g                               # tanh' for g
    da *= slope
    return da, dc_total * f


def forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step. x: (B, I), h, c: (B, H), w_ih: (4H, I), w_hh: (4H, H), b_*: (4H,) -> h', c': (B, H)."""
    a = w_ih @ x.T + w_hh @ h.T                                    # (4H, B): columns, see the module doc
    a += (b_ih + b_hh)[:, None]
    h_next, c_next, pw = lstm_pointwise_forward(a, np.ascontiguousarray(c.T))
    return np.ascontiguousarray(h_next.T), np.ascontiguousarray(c_next.T), LSTMCellCPUCache(x, h, w_ih, w_hh, pw)


def backward(dh_next, dc_next, cache):
    """Return dx (B, I), dh (B, H), dc (B, H), dw_ih, dw_hh, db_ih, db_hh (same shapes as forward).

    a = W_ih x + W_hh h + b  =>  dx = W_ih^T da,  dh = W_hh^T da,  dW_ih = da x^T,  dW_hh = da h^T,  db = sum da
    """
    x, h, w_ih, w_hh, pw = cache
    da, dc = lstm_pointwise_backward(dh_next.T, dc_next.T, pw)     # da: (4H, B)
    db = da.sum(axis=1)
    contiguous = np.ascontiguousarray
    return contiguous((w_ih.T @ da).T), contiguous((w_hh.T @ da).T), contiguous(dc.T), da @ x, da @ h, db, db
