"""An LSTM over a sequence with each step's gate arithmetic as one compiled loop (Numba).

The lesson's loop (minillm/nn/lstm.py) in columns, as cpu/lstm.py: a = W_hh h + (W_ih x + b),
(4H, B) per step, where the input half is one batched matmul for 16 steps at a time.
Each step is then one BLAS product and one pass over its H x B cells that computes the four
gates, the cell update and h' (forward), or the whole step's derivative (backward), reading and
writing each value once. The pass runs on one thread: a step is too small (8K cells) to pay for
waking a second one. With two or more cores and at least 64 units, forward and backward hand the
steps to lstm_parallel.py instead, which splits the units between threads that run every step.

Every array a step touches is contiguous, so each pass runs in vector registers:
    ax      (16, 4H, B)     W_ih x_t + b, made 16 steps at a time
    hs      (T+1, H, B)     h_0 .. h_T          cs (T+1, H, B)  c_0 .. c_T
    gates   (T, 4H, B)      i, f, g, o           tanh_c (T, H, B) tanh(c_1) .. tanh(c_T)
    da      (16, 4H, B)     the da of the last 16 steps, one contiguous block per step
    da_cols (4H, 16, B)     the same values as the columns the weight gradients take
The forward pass is one flat loop over a step's H*B cells (cell e's four gates sit at e, HB + e,
2HB + e and 3HB + e); the backward loops over the units j and the batch b. Each step writes its
da to a contiguous block, which the product for dh then reads: written straight into the strided
columns of da_cols instead, the step ran 75-90 us instead of 42 and the product 98 us instead
of 88 on the 2-core Xeon of docs/benchmarks.md. Each 16 steps, one copy moves the blocks into
da_cols.

tanh and sigmoid(z) = (1 + tanh(z/2)) / 2 come from one function, vector_tanh.tanh, which the
compiler runs 16 lanes at a time.
"""
from typing import NamedTuple

import numpy as np

from . import lstm_parallel
from .jit import compiled, unavailable
from .lstm_step import cells_backward, step_forward
from .reductions import sum_rows

CHUNK_STEPS = 16          # steps per chunk of the input products and weight gradients


class FusedLSTMCache(NamedTuple):
    x_tm: np.ndarray        # (T*B, I) the input, rows in (t, b) order
    w_ih: np.ndarray
    w_hh: np.ndarray
    hs: np.ndarray          # (T+1, H, B)
    cs: np.ndarray          # (T+1, H, B)
    gates: np.ndarray       # (T, 4H, B), or (T, P, 4H/P, B) from lstm_parallel
    tanh_c: np.ndarray      # (T, H, B)
    parts: int              # P: the steps ran in lstm_parallel's P parts (1: here, on one thread)

    def backward(self, dy, dh_T, dc_T):
        return backward(dy, dh_T, dc_T, self)


def accepts(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """None for NumPy float arrays of one dtype, with Numba installed."""
    return unavailable(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)


@compiled(one_thread=True)
def _dh_step(dh_rec, dy, t, dh):
    """dh = dh_rec + dy[:, t]^T (H, B): the gradient of step t's h' (it feeds y_t and step t+1)."""
    B, H = dy.shape[0], dy.shape[2]
    for b in range(B):                       # dy[b, t, :] is contiguous: read it in that order
        for j in range(H):
            dh[j, b] = dh_rec[j, b] + dy[b, t, j]


def recurrence(inputs, T, h0, c0, w_hh, steps=CHUNK_STEPS):
    """The loop over T steps from h0, c0: (B, H). ``inputs(t0, t1, ax)`` writes the input half
    W_ih x_t + b of steps t0 .. t1-1 into ax[:t1 - t0], (4H, B) each, ``steps`` steps ahead of use.

    Returns y (B, T, H) and the step arrays hs, cs (T+1, H, B), gates (T, 4H, B), tanh_c (T, H, B).
    """
    B, H = h0.shape
    dt = w_hh.dtype
    k = np.array([0.5, 1.0], dtype=dt)
    hs, cs = np.empty((T + 1, H, B), dtype=dt), np.empty((T + 1, H, B), dtype=dt)
    hs[0], cs[0] = h0.T, c0.T
    gates, tanh_c = np.empty((T, 4 * H, B), dtype=dt), np.empty((T, H, B), dtype=dt)
    y, a = np.empty((B, T, H), dtype=dt), np.empty((4 * H, B), dtype=dt)
    ax = np.empty((steps, 4 * H, B), dtype=dt)                        # the input halves of the next steps
    flat = a.reshape(-1)
    for t in range(T):
        if t % steps == 0:
            inputs(t, min(t + steps, T), ax)
        np.matmul(w_hh, hs[t], out=a)
        step_forward(flat, ax[t % steps].reshape(-1), cs[t].reshape(-1), k, gates[t].reshape(-1),
                      cs[t + 1].reshape(-1), tanh_c[t].reshape(-1), hs[t + 1].reshape(-1))
        y[:, t] = hs[t + 1].T
    return y, hs, cs, gates, tanh_c


def backprop(dy, dh_T, dc_T, w_hh, hs, cs, gates, tanh_c, on_chunk, steps=CHUNK_STEPS):
    """The loop over steps backward: dy (B, T, H), dh_T, dc_T (B, H) -> dh0, dc0 (B, H).

    The weight gradients sum over steps and batch. Each time ``steps`` steps (t0 .. t1-1) are
    done, ``on_chunk(t0, t1, da, h)`` gets their da as (4H, n) and h_{t0} .. h_{t1-1} as (H, n),
    n = (t1 - t0) B columns in (t, b) order, so that each sum is a few wide products
    (dW_hh += da h^T) on data still in the cache.
    """
    T, H, B = tanh_c.shape
    dt = gates.dtype
    k = np.array([0.5, 1.0], dtype=dt)
    dy = np.ascontiguousarray(dy, dtype=dt)
    w_hhT = np.ascontiguousarray(w_hh.T)                              # (H, 4H): the product below runs faster
    dh_rec, dh = np.array(dh_T.T, dtype=dt, order="C"), np.empty((H, B), dtype=dt)   # a copy: written below
    dc = np.array(dc_T.T, dtype=dt, order="C")
    da = np.empty((steps, 4 * H, B), dtype=dt)                        # step t's da in da[t % steps]
    da_cols, h_cols = np.empty((4 * H, steps, B), dtype=dt), np.empty((H, steps, B), dtype=dt)
    for t in reversed(range(T)):
        s = t % steps
        _dh_step(dh_rec, dy, t, dh)
        cells_backward(dh, dc, gates[t], cs[t], tanh_c[t], k, da[s])
        np.matmul(w_hhT, da[s], out=dh_rec)                           # dh_{t-1} = W_hh^T da
        if s == 0:                                                    # steps t .. t1-1 are done
            t1 = min(t + steps, T)
            np.copyto(da_cols[:, :t1 - t], da[:t1 - t].transpose(1, 0, 2))   # moving rows of B values
            np.copyto(h_cols[:, :t1 - t], hs[t:t1].transpose(1, 0, 2))
            on_chunk(t, t1, da_cols[:, :t1 - t].reshape(4 * H, -1), h_cols[:, :t1 - t].reshape(H, -1))
    return np.ascontiguousarray(dh_rec.T), np.ascontiguousarray(dc.T)


def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H), cache.

    With two or more cores the steps run in lstm_parallel's parts, the input halves of all steps
    one product before them."""
    B, T, I = x.shape
    H = w_hh.shape[1]
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))                   # (T, B, I)
    bias = (b_ih + b_hh)[:, None]
    P, ran = lstm_parallel.parts(H, w_hh.dtype), None
    if P > 1:
        order = lstm_parallel.part_order(H, P)
        ax = np.matmul(w_ih[order], x_tm.transpose(0, 2, 1))            # (T, 4H, B) in part order
        ax += bias[order]
        ran = lstm_parallel.recurrence(("dense", ax), h0, c0, w_hh, P)
    if ran is None:
        def inputs(t0, t1, ax):                                        # one product per step
            np.matmul(w_ih, x_tm[t0:t1].transpose(0, 2, 1), out=ax[:t1 - t0])
            ax[:t1 - t0] += bias
        P, ran = 1, recurrence(inputs, T, h0, c0, w_hh)
    y, hs, cs, gates, tanh_c = ran
    cache = FusedLSTMCache(x_tm.reshape(T * B, I), w_ih, w_hh, hs, cs, gates, tanh_c, P)
    return y, np.ascontiguousarray(hs[T].T), np.ascontiguousarray(cs[T].T), cache


def backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) -> dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.

    a = W_ih x + W_hh h + b  =>  dx = W_ih^T da,  dW_ih = sum da x^T,  dW_hh = sum da h^T,  db = sum da
    """
    x_tm, w_ih, w_hh, hs, cs, gates, tanh_c, P = cache
    T, H, B = tanh_c.shape
    if P > 1:
        ran = lstm_parallel.backprop(dy, dh_T, dc_T, w_hh, cs, gates, tanh_c)
        if ran is not None:                                           # da in part order, all steps
            dh0, dc0, da, _ = ran
            order = lstm_parallel.part_order(H, P)
            dx = np.ascontiguousarray((da.T @ w_ih[order]).reshape(T, B, -1).transpose(1, 0, 2))
            grads = [lstm_parallel.in_w_hh_order(g, order) for g in
                     (da @ x_tm, da @ lstm_parallel.h_columns(hs).T, sum_rows(da)[:, 0])]
            return dx, dh0, dc0, grads[0], grads[1], grads[2], grads[2].copy()
        gates = lstm_parallel.natural_gates(gates)                    # the threads did not run: one thread
    dx_tm = np.empty((T * B, x_tm.shape[1]), dtype=w_ih.dtype)
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(4 * H, dtype=w_ih.dtype)

    def on_chunk(t0, t1, da, h):
        rows = slice(t0 * B, t1 * B)
        np.matmul(da.T, w_ih, out=dx_tm[rows])
        dw_ih[...] += da @ x_tm[rows]
        dw_hh[...] += da @ h.T
        db[...] += sum_rows(da)[:, 0]
    dh0, dc0 = backprop(dy, dh_T, dc_T, w_hh, hs, cs, gates, tanh_c, on_chunk)
    dx = np.ascontiguousarray(dx_tm.reshape(T, B, -1).transpose(1, 0, 2))
    return dx, dh0, dc0, dw_ih, dw_hh, db, db.copy()
