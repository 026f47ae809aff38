"""An LSTM over a sequence with each step's gate arithmetic as one compiled loop (Numba).

The lesson's loop (minillm/nn/lstm.py) in columns, as cpu/lstm.py: a = W_hh h + (W_ih x + b),
(4H, B) per step, where the input half is one batched matmul for 16 steps at a time.
Each step is then one BLAS product and one pass over its H x B cells that computes the four
gates, the cell update and h' (forward), or the whole step's derivative (backward), reading and
writing each value once. The pass runs on one thread: a step is too small (8K cells) to pay for
waking a second one.

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

tanh and sigmoid(z) = (1 + tanh(z/2)) / 2 come from one function, ``tanh``: in float32 a rational
function x P(u) / Q(u), u = (x/9)^2, fitted to tanh on [-9, 9] and clamped outside (there tanh
rounds to +-1 in float32) and to [-1, 1]; its relative error is below 4e-7, about three float32
roundings. It is plain multiplies and adds, so the compiler runs it 16 lanes at a time; a call to
the exp or tanh of the C library cannot be vectorised. Its Horner steps may be fused multiply-adds,
as vector_exp's. In float64 it is the exact np.tanh, so the float64 tests compare the derivative
formulas, not an approximation.
"""
from typing import NamedTuple

import numpy as np

from .jit import compiled, numba, unavailable
from .reductions import sum_rows

CHUNK_STEPS = 16          # steps per chunk of the input products and weight gradients

# tanh(x) ~ x P(u) / Q(u), u = (x / 9)^2, |x| <= 9: coefficients of P and Q from u^0 up
TANH_CLAMP = 9.0
TANH_P = (0.99999994, 10.46458705, 19.16321796, 4.92515395, -0.55017021, 0.06365465)
TANH_Q = (1.0, 37.46454706, 155.91057021, 121.22286389)


def rational_tanh(x):
    """The float32 approximation as NumPy code: x P(u) / Q(u), u = (x/9)^2, x clamped to [-9, 9]
    and the result to [-1, 1]."""
    x = np.clip(np.asarray(x, np.float32), -TANH_CLAMP, TANH_CLAMP).astype(np.float32)
    u = x * x * np.float32(1.0 / TANH_CLAMP ** 2)
    p, q = np.float32(0.0), np.float32(0.0)
    for c in TANH_P[::-1]:
        p = p * u + np.float32(c)
    for c in TANH_Q[::-1]:
        q = q * u + np.float32(c)
    return np.clip(x * p / q, -1, 1).astype(np.float32)


def tanh(x):
    """tanh inside the compiled kernels: the rational function for float32, np.tanh for float64."""
    return np.tanh(x)


if numba is not None:
    _P = np.array(TANH_P, dtype=np.float32)
    _Q = np.array(TANH_Q, dtype=np.float32)
    _U = np.float32(1.0 / TANH_CLAMP ** 2)
    _HI, _LO, _ONE = np.float32(TANH_CLAMP), np.float32(-TANH_CLAMP), np.float32(1.0)

    from numba.extending import overload

    @overload(tanh, jit_options={"fastmath": {"contract"}})
    def _tanh_for(x):
        if x != numba.types.float32:
            return lambda x: np.tanh(x)

        def rational(x):
            x = _HI if x > _HI else (_LO if x < _LO else x)
            u = x * x * _U
            p = ((((_P[5] * u + _P[4]) * u + _P[3]) * u + _P[2]) * u + _P[1]) * u + _P[0]
            q = ((_Q[3] * u + _Q[2]) * u + _Q[1]) * u + _Q[0]
            r = x * p / q
            return _ONE if r > _ONE else (-_ONE if r < -_ONE else r)
        return rational


@compiled(one_thread=True)
def tanh_into(x, out):
    """out = tanh(x) elementwise, x and out flat: the kernels' tanh as a NumPy-callable loop."""
    for i in range(x.shape[0]):
        out[i] = tanh(x[i])


class FusedLSTMCache(NamedTuple):
    x_tm: np.ndarray        # (T*B, I) the input, rows in (t, b) order
    w_ih: np.ndarray
    w_hh: np.ndarray
    hs: np.ndarray          # (T+1, H, B)
    cs: np.ndarray          # (T+1, H, B)
    gates: np.ndarray       # (T, 4H, B)
    tanh_c: np.ndarray      # (T, H, B)

    def backward(self, dy, dh_T, dc_T):
        return backward(dy, dh_T, dc_T, self)


def accepts(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """None for NumPy float arrays of one dtype, with Numba installed."""
    return unavailable(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)


@compiled(one_thread=True)
def _step_forward(a, ax, c, k, gates, c_next, tanh_c, h_next):
    """One step on flat (4H*B) a = W_hh h and ax = W_ih x + b, and flat (H*B) c; k = [1/2, 1].

    i, f, o = (1 + tanh(z/2)) / 2,  g = tanh(z),  c' = f c + i g,  h' = o tanh(c')
    """
    n = c.shape[0]
    half = k[0]
    for e in range(n):
        i = half + half * tanh(half * (a[e] + ax[e]))
        f = half + half * tanh(half * (a[n + e] + ax[n + e]))
        g = tanh(a[2 * n + e] + ax[2 * n + e])
        o = half + half * tanh(half * (a[3 * n + e] + ax[3 * n + e]))
        cn = f * c[e] + i * g
        tc = tanh(cn)
        gates[e], gates[n + e], gates[2 * n + e], gates[3 * n + e] = i, f, g, o
        c_next[e] = cn
        tanh_c[e] = tc
        h_next[e] = o * tc


@compiled(one_thread=True)
def _step_backward(dh_rec, dy, t, dc, gates, c, tanh_c, k, dh, da):
    """Step t backward. dh = dh_rec + dy[:, t]^T (H, B) is the gradient of h'; dc (H, B) that of c',
    which becomes that of c. gates (4H, B) and c, tanh_c (H, B) are the step's. Writes the step's
    da (4H, B). k = [1/2, 1].

    dc' = dc + dh o (1 - tanh(c')^2);  da_i = dc' g i (1 - i),  da_f = dc' c f (1 - f),
    da_g = dc' i (1 - g^2),  da_o = dh tanh(c') o (1 - o);  dc = dc' f
    """
    B, H = dy.shape[0], dy.shape[2]
    one = k[1]
    for b in range(B):                       # dy[b, t, :] is contiguous: read it in that order
        for j in range(H):
            dh[j, b] = dh_rec[j, b] + dy[b, t, j]
    for j in range(H):                       # the rows of the four gates of unit j, B values each
        for b in range(B):
            i, f, g, o = gates[j, b], gates[H + j, b], gates[2 * H + j, b], gates[3 * H + j, b]
            tc, d = tanh_c[j, b], dh[j, b]
            dct = dc[j, b] + d * o * (one - tc * tc)
            da[j, b] = dct * g * i * (one - i)
            da[H + j, b] = dct * c[j, b] * f * (one - f)
            da[2 * H + j, b] = dct * i * (one - g * g)
            da[3 * H + j, b] = d * tc * o * (one - o)
            dc[j, b] = dct * f


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
        _step_forward(flat, ax[t % steps].reshape(-1), cs[t].reshape(-1), k, gates[t].reshape(-1),
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
        _step_backward(dh_rec, dy, t, dc, gates[t], cs[t], tanh_c[t], k, dh, da[s])
        np.matmul(w_hhT, da[s], out=dh_rec)                           # dh_{t-1} = W_hh^T da
        if s == 0:                                                    # steps t .. t1-1 are done
            t1 = min(t + steps, T)
            np.copyto(da_cols[:, :t1 - t], da[:t1 - t].transpose(1, 0, 2))   # moving rows of B values
            np.copyto(h_cols[:, :t1 - t], hs[t:t1].transpose(1, 0, 2))
            on_chunk(t, t1, da_cols[:, :t1 - t].reshape(4 * H, -1), h_cols[:, :t1 - t].reshape(H, -1))
    return np.ascontiguousarray(dh_rec.T), np.ascontiguousarray(dc.T)


def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H), cache."""
    B, T, I = x.shape
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))                   # (T, B, I)
    bias = (b_ih + b_hh)[:, None]

    def inputs(t0, t1, ax):                                            # one product per step
        np.matmul(w_ih, x_tm[t0:t1].transpose(0, 2, 1), out=ax[:t1 - t0])
        ax[:t1 - t0] += bias
    y, hs, cs, gates, tanh_c = recurrence(inputs, T, h0, c0, w_hh)
    cache = FusedLSTMCache(x_tm.reshape(T * B, I), w_ih, w_hh, hs, cs, gates, tanh_c)
    return y, np.ascontiguousarray(hs[T].T), np.ascontiguousarray(cs[T].T), cache


def backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) -> dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.

    a = W_ih x + W_hh h + b  =>  dx = W_ih^T da,  dW_ih = sum da x^T,  dW_hh = sum da h^T,  db = sum da
    """
    x_tm, w_ih, w_hh, hs, cs, gates, tanh_c = cache
    T, H, B = tanh_c.shape
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
