"""The LSTM recurrence with its hidden units split between the cores, each core running every step.

fused_lstm.py runs a step as one BLAS product on all cores, then one pass over the gates on one
core. Here the H units are cut into P parts of Hp = H / P units (P = Numba's threads, 2 on the
machine of docs/benchmarks.md), and thread p runs, for every step, all that its units need:

    forward, step t:   a_p = W_p h_t          (4 Hp, B): the four gate rows of p's units
                       i, f, g, o, c', h' of p's units (fused_lstm's step)
                       meet: every part has written its rows of h_{t+1}
    backward, step t:  dh = dy_t + sum_q G_q  (p's units): the parts' shares of W_hh^T da
                       da, dc of p's units (fused_lstm's step backward)
                       G_p = W_p^T da_p       (H, B)
                       meet: every part has written G_p

W_p stays in its core's cache for all T steps, the gate passes of the parts run side by side,
and the threads meet at barrier.py's spin barrier (about a microsecond) instead of handing
each step to BLAS's threads and back. Each product is cut into pieces of at most 100^3
multiply-adds (64 rows of W_p at H 256, B 32), which OpenBLAS runs by its small-matrix kernels
without packing the matrices: a part's 512 x 256 x 32 product took 99 us in pieces against 129
in one call, on one core of the 2-core Xeon of docs/benchmarks.md. The products are NumPy's
OpenBLAS ?gemm, called from the compiled loops (openblas.py) with BLAS set to one thread.

The rows of the gates are kept in part order: row r of the arrays here is row order[r] of W_hh
(part p holds rows p*4Hp .. (p+1)*4Hp - 1: i, f, g, o of its units). Step t's input half
W_ih x_t + b comes in that order either as all steps' products (fused_lstm.py: (T, 4H, B)) or
as a table (4H, M) and column numbers idx (T, B) (embedding_lstm.py: the folded embedding,
M = V, idx the token ids). Gradients go back to W_hh's order in the callers.
"""
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import jit, openblas
from .barrier import meet
from .batched_matmul import SMALL
from .jit import compiled
from .openblas import NO_TRANS, ROW_MAJOR
from .threads import blas_threads, current_cpu, off_core
from .lstm_step import cells_backward, step_forward

MIN_UNITS = 32              # units per part at least: fewer, and the meetings cost more than they save
MAX_SPIN = 22               # OpenBLAS's idle threads may spin 2^22 cycles at most (see parts)
WAIT_LIMIT = 1 << 31        # barrier reads before a thread gives up (seconds of spinning)
_pool = {}
# the compiled loops themselves, called from the part loops below (lstm_step's are wrapped for Python)
_step_forward, _cells_backward = (getattr(f, "serial", f) for f in (step_forward, cells_backward))


def parts(H, dtype):
    """The number of parts for H units in this dtype: Numba's threads (at most H / MIN_UNITS, a
    divisor of H), or 1 where the recurrence runs as in fused_lstm.py: one thread, no Numba, in a
    thread that shares the cores (DataParallel), NumPy's BLAS is not OpenBLAS, or its idle
    threads spin longer than 2^MAX_SPIN cycles after a product. A spinning BLAS thread takes the
    core of the part that runs beside it: an LSTM LM step of docs/benchmarks.md took 44 ms split
    in two with OpenBLAS's default 2^28 cycles (0.1 s), 30 ms with 2^20 (what minillm sets when
    it is imported before NumPy, minillm/__init__.py) and 33 ms on fused_lstm's path."""
    spin = openblas.spin_exponent()
    if (jit.numba is None or jit.in_shared_thread() or spin is None or spin > MAX_SPIN
            or _gemm(dtype) is None or not blas_threads.available()):
        return 1
    P = min(jit.threads(), H // MIN_UNITS)
    while P > 1 and H % P:
        P -= 1
    return max(P, 1)


def _gemm(dtype):
    return openblas.function("gemm", dtype, openblas.GEMM)


def part_order(H, P):
    """(4H,) the rows of W_hh (gates i, f, g, o of H units each) in part order (part, gate, unit)."""
    Hp = H // P
    return np.array([g * H + p * Hp + j for p in range(P) for g in range(4) for j in range(Hp)])


def in_w_hh_order(x, order):
    """Rows of x (4H, ...) in part order -> in W_hh's order."""
    out = np.empty_like(x)
    out[order] = x
    return out


def natural_gates(gates):
    """gates (T, P, 4Hp, B) -> (T, 4H, B) in W_hh's order, as fused_lstm.py keeps them."""
    T, P, R, B = gates.shape
    order = part_order(R * P // 4, P)
    return in_w_hh_order(gates.reshape(T, P * R, B).transpose(1, 0, 2), order).transpose(1, 0, 2).copy()


def h_columns(hs):
    """hs (T+1, H, B) -> (H, T B): h_0 .. h_{T-1} as columns in (t, b) order (dW_hh = da h^T)."""
    T1, H, B = hs.shape
    return np.ascontiguousarray(hs[:-1].transpose(1, 0, 2)).reshape(H, (T1 - 1) * B)


def _piece(B, K, rows):
    """Rows per product piece: the largest power of two (at least 8) with rows * B * K <= 100^3,
    for OpenBLAS's small-matrix kernels (they ran 64-row pieces at 1.6 times the speed of 120-row
    ones); all rows at once where not even 8 fit."""
    n = 8
    if n * B * K > SMALL:
        return rows
    while 2 * n * B * K <= SMALL and 2 * n <= rows:
        n *= 2
    return n


@compiled(one_thread=True)
def _forward_part(gemm, p, w, dense, table, idx, gathered, hs, cs, gates, tanh_c, a, xs, counter, piece, k, limit):
    """Part p's share of all T steps: w (P, 4Hp, H) each part's rows of W_hh; the input halves
    either dense (T, P, 4Hp, B) or gathered = True: table (4H, M) columns idx (T, B); hs, cs
    (T+1, P, Hp, B) with h_0, c_0 (the (T+1, H, B) arrays seen by part); gates (T, P, 4Hp, B);
    tanh_c (T, P, Hp, B); a, xs (P, 4Hp B) scratch; k = [1/2, 1]. False when the barrier gave up.
    The step is lstm_step's, on the part's contiguous values."""
    P, R, H = w.shape
    T, B = gates.shape[0], gates.shape[3]
    one = k[1]
    zero = one - one
    ap, xp = a[p], xs[p]
    for t in range(T):
        for m0 in range(0, R, piece):                                 # a_p = W_p h_t, piece by piece
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, min(piece, R - m0), B, H, one, w[p, m0:].ctypes.data, H,
                 hs[t].ctypes.data, B, zero, ap[m0 * B:].ctypes.data, B)
        if gathered:                                                  # the input halves W_ih x_t + b
            for r in range(R):
                for b in range(B):
                    xp[r * B + b] = table[p * R + r, idx[t, b]]
            x_t = xp
        else:
            x_t = dense[t, p].ravel()
        _step_forward(ap, x_t, cs[t, p].ravel(), k, gates[t, p].ravel(), cs[t + 1, p].ravel(),
                      tanh_c[t, p].ravel(), hs[t + 1, p].ravel())
        if not meet(counter, P * (t + 1), limit):
            return False
    return True


@compiled(one_thread=True)
def _backward_part(gemm, p, w_t, dy, dc, gates, cs, tanh_c, grad, da, dh, da_cols, ids, by_id, counter, piece, k,
                   limit):
    """Part p's share of all T steps backward: w_t (P, H, 4Hp) each part's W_p^T; dy (B, T, H); dc
    (P, Hp, B) the gradient of c_T, left as that of c_0; gates, cs, tanh_c as in _forward_part;
    grad (2, P, H, B) the parts' G, step t reading slot (t+1) % 2 (slot T % 2: dh_T and zeros)
    and writing slot t % 2; da (P, 4Hp, B), dh (P, Hp, B) scratch; da_cols (4H, T, B) every
    step's da in part order. With ids (T, B) of a folded embedding (embedding_lstm.py), by_id
    (4H, V) gets each step's da summed per token id (D), part p its own rows, while da is in
    cache; an empty ids skips that. The step is lstm_step's cells_backward."""
    P, H, R = w_t.shape
    B, T = dy.shape[0], dy.shape[1]
    Hp = R // 4
    one = k[1]
    zero = one - one
    dap, dhp = da[p], dh[p]
    for t in range(T - 1, -1, -1):
        src, dst = (t + 1) % 2, t % 2
        for b in range(B):                                            # dh = dy_t + the parts' shares
            for u in range(Hp):
                dhp[u, b] = dy[b, t, p * Hp + u]
        for q in range(P):
            for u in range(Hp):
                for b in range(B):
                    dhp[u, b] += grad[src, q, p * Hp + u, b]
        _cells_backward(dhp, dc[p], gates[t, p], cs[t, p], tanh_c[t, p], k, dap)
        for r in range(R):                                            # the weight gradients' columns
            for b in range(B):
                da_cols[p * R + r, t, b] = dap[r, b]
        if ids.shape[0] > 0:
            for r in range(R):                                        # D[:, v] += da of the tokens v
                for b in range(B):
                    by_id[p * R + r, ids[t, b]] += dap[r, b]
        for m0 in range(0, H, piece):                                 # G_p = W_p^T da_p, piece by piece
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, min(piece, H - m0), B, R, one, w_t[p, m0:].ctypes.data, R,
                 dap.ctypes.data, B, zero, grad[dst, p, m0:].ctypes.data, B)
        if not meet(counter, P * (T - t), limit):
            return False
    return True


def _run(P, part):
    """part(p) for p = 0 .. P-1, each on its own thread (this one runs p = 0), BLAS on one thread
    each; True when every part finished."""
    if _pool.get("size") != P - 1:
        _pool["size"], _pool["pool"] = P - 1, ThreadPoolExecutor(P - 1)
    cpu = current_cpu()                # the other parts keep off this thread's core
    with blas_threads(1), jit.one_thread_each():
        futures = [_pool["pool"].submit(off_core.call, cpu, part, p) for p in range(1, P)]
        done = part(0)
        return all([done] + [f.result() for f in futures])


def recurrence(inputs, h0, c0, w_hh, P):
    """The loop over T steps from h0, c0: (B, H), in P parts. ``inputs`` holds the input halves
    in part order: ("dense", (T, 4H, B)) or ("gathered", table (4H, M), idx (T, B)).

    Returns y (B, T, H), hs, cs (T+1, H, B), gates (T, P, 4Hp, B) and tanh_c (T, H, B), or None
    when the threads did not all run (then the caller runs fused_lstm's loop).
    """
    B, H = h0.shape
    dt, Hp = w_hh.dtype, H // P
    w = np.ascontiguousarray(w_hh[part_order(H, P)]).reshape(P, 4 * Hp, H)
    if inputs[0] == "dense":
        T = inputs[1].shape[0]
        dense, table, idx = inputs[1].reshape(T, P, 4 * Hp, B), np.zeros((1, 1), dt), np.zeros((1, 1), np.int64)
    else:
        T = inputs[2].shape[0]
        dense, table, idx = np.zeros((1, 1, 1, 1), dt), inputs[1], np.ascontiguousarray(inputs[2], dtype=np.int64)
    hs, cs = np.empty((T + 1, H, B), dtype=dt), np.empty((T + 1, H, B), dtype=dt)
    hs[0], cs[0] = h0.T, c0.T
    gates, tanh_c = np.empty((T, P, 4 * Hp, B), dtype=dt), np.empty((T, H, B), dtype=dt)
    a, xs = np.empty((P, 4 * Hp * B), dtype=dt), np.empty((P, 4 * Hp * B), dtype=dt)
    counter, k = np.zeros(1, dtype=np.int64), np.array([0.5, 1.0], dtype=dt)
    gemm, piece = _gemm(dt), _piece(B, H, 4 * Hp)
    parts_of = [x.reshape(x.shape[0], P, Hp, B) for x in (hs, cs, tanh_c)]     # the same memory, by part
    if not _run(P, lambda p: _forward_part(gemm, p, w, dense, table, idx, inputs[0] == "gathered", parts_of[0],
                                           parts_of[1], gates, parts_of[2], a, xs, counter, piece, k, WAIT_LIMIT)):
        warnings.warn("lstm_parallel: a thread did not arrive; the LSTM runs on one thread this step")
        return None
    y = np.ascontiguousarray(hs[1:].transpose(2, 0, 1))              # (B, T, H)
    return y, hs, cs, gates, tanh_c


def backprop(dy, dh_T, dc_T, w_hh, cs, gates, tanh_c, ids=None, V=0):
    """The loop over steps backward in the forward's parts: dy (B, T, H), dh_T, dc_T (B, H) ->
    dh0, dc0 (B, H), da (4H, T B): every step's da in part order, columns in (t, b) order, and
    with ids (T, B) of a folded embedding of V rows, D (4H, V) in part order: da summed per id
    (else None). None when the threads did not all run."""
    T, P, R, B = gates.shape
    H, dt = w_hh.shape[1], gates.dtype
    order = part_order(H, P)
    w_t = np.ascontiguousarray(w_hh[order].reshape(P, R, H).transpose(0, 2, 1))   # (P, H, 4Hp)
    grad = np.zeros((2, P, H, B), dtype=dt)
    grad[T % 2, 0] = dh_T.T                                          # what step T-1 reads
    Hp = R // 4
    dc = np.array(dc_T.T, dtype=dt, order="C").reshape(P, Hp, B)
    da, dh = np.empty((P, R, B), dtype=dt), np.empty((P, Hp, B), dtype=dt)
    da_cols = np.empty((4 * H, T, B), dtype=dt)
    counter, k = np.zeros(1, dtype=np.int64), np.array([0.5, 1.0], dtype=dt)
    gemm, piece = _gemm(dt), _piece(B, R, H)
    dy = np.ascontiguousarray(dy, dtype=dt)
    cs_p, tanh_p = cs.reshape(T + 1, P, Hp, B), tanh_c.reshape(T, P, Hp, B)
    by_id = np.zeros((4 * H, V if ids is not None else 1), dtype=dt)
    ids = np.zeros((0, B), np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    if not _run(P, lambda p: _backward_part(gemm, p, w_t, dy, dc, gates, cs_p, tanh_p, grad, da, dh, da_cols,
                                            ids, by_id, counter, piece, k, WAIT_LIMIT)):
        warnings.warn("lstm_parallel: a thread did not arrive; the LSTM runs on one thread this step")
        return None
    dh0 = grad[0].sum(axis=0)                                        # step 0 wrote slot 0
    return (np.ascontiguousarray(dh0.T), np.ascontiguousarray(dc.reshape(H, B).T), da_cols.reshape(4 * H, T * B),
            by_id if ids.shape[0] else None)
