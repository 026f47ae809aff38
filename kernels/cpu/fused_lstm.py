"""The LSTM over a sequence with each step's gate arithmetic as compiled loops (Numba).

The sequence loop is lstm.py's (the input products of all steps in one matmul, one (4H, H) x
(H, B) product per step, in columns). Between the products, each step's element-wise work, which
lstm_cell.py spreads over a dozen NumPy calls, is three compiled loops around NumPy's vectorised
exp (Numba's own exp is scalar):

    forward:   e = exp(-z) (exp(-2z) for g)  ->  i, f, o = 1 / (1 + e),  g = 2 / (1 + e) - 1,
               c' = f c + i g,  then tanh(c') = 2 / (1 + exp(-2 c')) - 1,  h' = o tanh(c')
    backward:  dc' = dh' o (1 - tanh^2 c') + dc,  da = [dc' g, dc' c, dc' i, dh' tanh c'] * slope,
               slope = s (1 - s) for i, f, o and 1 - g^2 for g;  dc = dc' f      (one loop)

The loops run serially: a step's arrays (4H x B) are too small for threads to pay for waking.
"""
import numpy as np

from . import lstm
from .jit import unavailable

try:
    import numba
except ImportError:                      # accepts() says so; nothing below is compiled
    numba = None


def accepts(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """None for NumPy float arrays of one dtype, with Numba installed."""
    return unavailable(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh)


def _serial(function):
    """numba.njit for the small per-step loops (no threads), or the function itself without Numba."""
    return function if numba is None else numba.njit(nogil=True, cache=True)(function)


@_serial
def _pre_activation(a, H, one):
    """a (4H, B) -> -a, and -2a on the g rows, in place (the arguments of exp)."""
    G, B = a.shape
    two = one + one
    for r in range(G):
        k = two if 2 * H <= r < 3 * H else one
        for b in range(B):
            a[r, b] = -k * a[r, b]


@_serial
def _gates_and_cell(e, c, c_next, m2c, one):
    """e = exp(...) (4H, B) -> the gate values in place; c' = f c + i g; m2c = -2 c'."""
    G, B = e.shape
    H = G // 4
    two = one + one
    for r in range(G):
        for b in range(B):
            s = one / (one + e[r, b])
            e[r, b] = two * s - one if 2 * H <= r < 3 * H else s
    for r in range(H):
        for b in range(B):
            cn = e[H + r, b] * c[r, b] + e[r, b] * e[2 * H + r, b]
            c_next[r, b] = cn
            m2c[r, b] = -two * cn


@_serial
def _hidden(gates, e2, h, one):
    """e2 = exp(-2 c') -> tanh(c') in place; h = o tanh(c'), all (H, B)."""
    H, B = e2.shape
    two = one + one
    for r in range(H):
        for b in range(B):
            t = two / (one + e2[r, b]) - one
            e2[r, b] = t
            h[r, b] = gates[3 * H + r, b] * t


@_serial
def _step_backward(dh, dc_next, gates, c, tc, da, dc, one):
    """The step's backward in one pass: da (4H, B) and dc (H, B) from dh', dc' (H, B)."""
    H, B = dh.shape
    for r in range(H):
        for b in range(B):
            i, f, g, o = gates[r, b], gates[H + r, b], gates[2 * H + r, b], gates[3 * H + r, b]
            t = tc[r, b]
            total = dh[r, b] * o * (one - t * t) + dc_next[r, b]
            da[r, b] = total * g * i * (one - i)
            da[H + r, b] = total * c[r, b] * f * (one - f)
            da[2 * H + r, b] = total * i * (one - g * g)
            da[3 * H + r, b] = dh[r, b] * t * o * (one - o)
            dc[r, b] = total * f


def pointwise_forward(a, c):
    """lstm_cell.lstm_pointwise_forward, compiled: (h', c', (gates, c, tanh c')); a is overwritten."""
    H, one = c.shape[0], c.dtype.type(1)       # 1 of the arrays' dtype: float32 stays float32
    _pre_activation(a, H, one)
    with np.errstate(over="ignore"):                   # e^-z = inf for very negative z: the sigmoid's limit 0
        np.exp(a, out=a)
    c_next, tc, h = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    _gates_and_cell(a, c, c_next, tc, one)
    with np.errstate(over="ignore"):
        np.exp(tc, out=tc)
    _hidden(a, tc, h, one)
    return h, c_next, (a, c, tc)


def pointwise_backward(dh_next, dc_next, cache, out=None):
    """lstm_cell.lstm_pointwise_backward, compiled: da (4H, B) (into ``out`` if given) and dc (H, B)."""
    gates, c, tc = cache
    da = np.empty_like(gates) if out is None else out
    dc = np.empty_like(c)
    _step_backward(np.ascontiguousarray(dh_next), np.ascontiguousarray(dc_next), gates, c, tc, da, dc,
                   c.dtype.type(1))
    return da, dc


def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """lstm.forward with the compiled step; x: (B, T, I), h0, c0: (B, H)."""
    return lstm.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, pointwise=(pointwise_forward, pointwise_backward))
