"""An LSTM over a sequence on the CPU: the lesson's loop (minillm/nn/lstm.py) in columns.

The input half of every step's pre-activation (W_ih x + b) is one matmul for all T steps; inside
the loop there is one (4H, H) x (H, B) matmul per step. The hidden states are kept time-major,
hs: (T+1, B, H), so y and the weight gradients are each one product over all steps. The
element-wise step is lstm_cell.py's.
"""
from typing import NamedTuple

import numpy as np

from . import numpy_float
from .lstm_cell import lstm_pointwise_backward, lstm_pointwise_forward


class LSTMCPUCache(NamedTuple):
    x_tm: np.ndarray        # (T*B, I) the input, rows in (t, b) order
    w_ih: np.ndarray
    w_hh: np.ndarray
    hs: np.ndarray          # (T+1, B, H) h_0 .. h_T
    steps: list             # each step's pointwise cache

    def backward(self, dy, dh_T, dc_T):
        return backward(dy, dh_T, dc_T, self)


def accepts(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """None for float NumPy arrays."""
    return numpy_float("x", x)


def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H).

    The hidden states are kept time-major, hs: (T+1, B, H), so that y and the weight gradients are
    cheap to form; step t reads hs[t].T, a (H, B) view, and writes its (H, B) result back transposed.
    """
    B, T, I = x.shape
    H = h0.shape[1]
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, I)   # rows in (t, b) order
    ax = w_ih @ x_tm.T                                              # (4H, T*B): input half of a, all steps
    ax += (b_ih + b_hh)[:, None]
    ax = ax.reshape(4 * H, T, B)                                    # ax[:, t] is step t's (4H, B)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)                    # h_0 .. h_T
    hs[0] = h0
    c, steps = np.ascontiguousarray(c0.T), []
    for t in range(T):
        a = w_hh @ hs[t].T                                          # (4H, H) x (H, B)
        a += ax[:, t]
        h, c, pw = lstm_pointwise_forward(a, c)
        hs[t + 1] = h.T
        steps.append(pw)
    y = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))            # (B, T, H)
    return y, hs[T].copy(), np.ascontiguousarray(c.T), LSTMCPUCache(x_tm, w_ih, w_hh, hs, steps)


def backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) (gradients of the final state; zeros if unused).

    Returns dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    x_tm, w_ih, w_hh, hs, steps = cache
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dy_tm = np.ascontiguousarray(dy.transpose(1, 0, 2))            # (T, B, H)
    da_all = np.empty((T, 4 * H, B), dtype=dy.dtype)               # step t writes da_all[t], contiguous
    dh, dc = np.ascontiguousarray(dh_T.T), np.ascontiguousarray(dc_T.T)
    for t in reversed(range(T)):
        da, dc = lstm_pointwise_backward(dh + dy_tm[t].T, dc, steps[t], out=da_all[t])  # h_t feeds y_t and step t+1
        dh = w_hh.T @ da                                            # a_t depends on h_{t-1} through W_hh
    # the weight gradients sum over steps and batch: one matmul each over (4H, T*B) columns in (t, b)
    # order, matching the rows of x_tm and hs (moving rows of B values: a cheap copy)
    da2 = np.ascontiguousarray(da_all.transpose(1, 0, 2)).reshape(4 * H, T * B)
    dx = np.ascontiguousarray((da2.T @ w_ih).reshape(T, B, -1).transpose(1, 0, 2))
    dw_ih = da2 @ x_tm
    dw_hh = da2 @ hs[:-1].reshape(T * B, H)
    db = da2.sum(axis=1)
    return dx, np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T), dw_ih, dw_hh, db, db.copy()
