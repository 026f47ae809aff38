"""Long short-term memory (Hochreiter & Schmidhuber 1997), one step and a whole sequence.

Letters: B batch, T time steps, I input size, H hidden size. Gate order i, f, g, o (as PyTorch).
Inside, vectors are columns, as in the textbook: x (I, B), h and c (H, B), one column per sequence.

    a = W_ih x + b_ih + W_hh h + b_hh          (4H, B), split into rows a_i, a_f, a_g, a_o
    i = sigmoid(a_i)   input gate         f = sigmoid(a_f)   forget gate
    g = tanh(a_g)      candidate cell     o = sigmoid(a_o)   output gate
    c' = f * c + i * g                    h' = o * tanh(c')

A sequence applies the step for t = 0..T-1; backpropagation through time runs the
step backward for t = T-1..0, carrying dh and dc from step t to step t-1.
For speed the input half of ``a`` (W_ih x + b) is one matmul for all T steps; inside the loop
there is one (4H, H) x (H, B) matmul per step. Columns (4H, B) rather than rows (B, 4H) because
it is measured faster here: BLAS handles a tall W_hh times a thin h better than the transpose,
and each gate is then a contiguous block of rows.
The public functions take and return batch-first arrays, x: (B, T, I), like PyTorch.
"""
import math

import numpy as np

from .. import backend
from . import init
from .checks import check_backend, check_float, check_ndim, check_last_dim
from .module import Module, ModuleList, Parameter


# ============================================================================ one step
def lstm_pointwise_forward(a, c):
    """From pre-activations a: (4H, B) and cell c: (H, B) to (h', c'); the cache keeps the gate values.

    ``a`` is overwritten with the gate values [i, f, g, o] (callers pass a fresh array). All four
    gates come from one exp: sigmoid(z) = 1 / (1 + e^-z) for i, f, o, and tanh(z) = 2 sigmoid(2z) - 1
    for g (NumPy's float32 exp is about twice as fast as its tanh). For very negative z, e^-z
    overflows to inf and the sigmoid becomes exactly 0, the right limit: the warning is silenced.
    """
    xp = backend.get_array_module(a)
    H = c.shape[0]
    xp.negative(a, out=a)
    a[2 * H:3 * H] *= 2.0                                          # g rows: -2z
    with np.errstate(over="ignore"):
        xp.exp(a, out=a)
    a += 1.0
    gates = xp.divide(1.0, a, out=a)                               # sigmoid(z) | g rows: sigmoid(2z)
    gates[2 * H:3 * H] *= 2.0
    gates[2 * H:3 * H] -= 1.0                                      # g = tanh(z)
    i, f, g, o = (gates[k * H:(k + 1) * H] for k in range(4))
    c_next = f * c
    c_next += i * g
    tc = xp.tanh(c_next)
    return o * tc, c_next, (gates, c, tc)


def lstm_pointwise_backward(dh_next, dc_next, cache, out=None):
    """Given dL/dh', dL/dc' (H, B), return da (4H, B) (written into ``out`` if given) and dc (H, B).

    h' = o * tanh(c')   =>  do = dh' * tanh(c'),   dc' += dh' * o * (1 - tanh(c')^2)
    c' = f * c + i * g  =>  df = dc' * c,  di = dc' * g,  dg = dc' * i,  dc = dc' * f
    then through the activations: sigmoid' = s (1 - s) for i, f, o;  tanh' = 1 - g^2 for g
    """
    gates, c, tc = cache
    xp = backend.get_array_module(dh_next)
    H = c.shape[0]
    i, f, g, o = (gates[k * H:(k + 1) * H] for k in range(4))
    dc_total = dh_next * o
    dc_total *= 1.0 - tc * tc
    dc_total += dc_next
    da = xp.empty_like(gates) if out is None else out
    xp.multiply(dc_total, g, out=da[:H])                           # d i
    xp.multiply(dc_total, c, out=da[H:2 * H])                      # d f
    xp.multiply(dc_total, i, out=da[2 * H:3 * H])                  # d g
    xp.multiply(dh_next, tc, out=da[3 * H:])                       # d o
    slope = gates * (1.0 - gates)                                  # s (1 - s): right for i, f, o
    slope[2 * H:3 * H] = 1.0 - g * g                               # tanh' for g
    da *= slope
    return da, dc_total * f


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step. x: (B, I), h, c: (B, H), w_ih: (4H, I), w_hh: (4H, H), b_*: (4H,) -> h', c': (B, H)."""
    xp = backend.get_array_module(x)
    a = w_ih @ x.T + w_hh @ h.T                                    # (4H, B): columns, see the module doc
    a += (b_ih + b_hh)[:, None]
    h_next, c_next, pw = lstm_pointwise_forward(a, xp.ascontiguousarray(c.T))
    return xp.ascontiguousarray(h_next.T), xp.ascontiguousarray(c_next.T), (x, h, w_ih, w_hh, pw)


def lstm_cell_backward(dh_next, dc_next, cache):
    """Return dx (B, I), dh (B, H), dc (B, H), dw_ih, dw_hh, db_ih, db_hh (same shapes as forward).

    a = W_ih x + W_hh h + b  =>  dx = W_ih^T da,  dh = W_hh^T da,  dW_ih = da x^T,  dW_hh = da h^T,  db = sum da
    """
    x, h, w_ih, w_hh, pw = cache
    xp = backend.get_array_module(x)
    da, dc = lstm_pointwise_backward(dh_next.T, dc_next.T, pw)     # da: (4H, B)
    db = da.sum(axis=1)
    t = xp.ascontiguousarray
    return t((w_ih.T @ da).T), t((w_hh.T @ da).T), t(dc.T), da @ x, da @ h, db, db


# ============================================================================ a sequence
def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H).

    The hidden states are kept time-major, hs: (T+1, B, H), so that y and the weight gradients are
    cheap to form; step t reads hs[t].T, a (H, B) view, and writes its (H, B) result back transposed.
    """
    xp = backend.get_array_module(x)
    B, T, I = x.shape
    H = h0.shape[1]
    x_tm = xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, I)   # rows in (t, b) order
    ax = w_ih @ x_tm.T                                              # (4H, T*B): input half of a, all steps
    ax += (b_ih + b_hh)[:, None]
    ax = ax.reshape(4 * H, T, B)                                    # ax[:, t] is step t's (4H, B)
    hs = xp.empty((T + 1, B, H), dtype=x.dtype)                    # h_0 .. h_T
    hs[0] = h0
    c, steps = xp.ascontiguousarray(c0.T), []
    for t in range(T):
        a = w_hh @ hs[t].T                                          # (4H, H) x (H, B)
        a += ax[:, t]
        h, c, pw = lstm_pointwise_forward(a, c)
        hs[t + 1] = h.T
        steps.append(pw)
    y = xp.ascontiguousarray(hs[1:].transpose(1, 0, 2))            # (B, T, H)
    return y, hs[T].copy(), xp.ascontiguousarray(c.T), (x_tm, w_ih, w_hh, hs, steps)


def lstm_backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) (gradients of the final state; zeros if unused).

    Returns dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    x_tm, w_ih, w_hh, hs, steps = cache
    xp = backend.get_array_module(dy)
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dy_tm = xp.ascontiguousarray(dy.transpose(1, 0, 2))            # (T, B, H)
    da_all = xp.empty((T, 4 * H, B), dtype=dy.dtype)               # step t writes da_all[t], contiguous
    dh, dc = xp.ascontiguousarray(dh_T.T), xp.ascontiguousarray(dc_T.T)
    for t in reversed(range(T)):
        da, dc = lstm_pointwise_backward(dh + dy_tm[t].T, dc, steps[t], out=da_all[t])  # h_t feeds y_t and step t+1
        dh = w_hh.T @ da                                            # a_t depends on h_{t-1} through W_hh
    # the weight gradients sum over steps and batch: one matmul each over (4H, T*B) columns in (t, b)
    # order, matching the rows of x_tm and hs (moving rows of B values: a cheap copy)
    da2 = xp.ascontiguousarray(da_all.transpose(1, 0, 2)).reshape(4 * H, T * B)
    dx = xp.ascontiguousarray((da2.T @ w_ih).reshape(T, B, -1).transpose(1, 0, 2))
    dw_ih = da2 @ x_tm
    dw_hh = da2 @ hs[:-1].reshape(T * B, H)
    db = da2.sum(axis=1)
    return dx, xp.ascontiguousarray(dh.T), xp.ascontiguousarray(dc.T), dw_ih, dw_hh, db, db.copy()


# ============================================================================ Modules
def _lstm_params(obj, suffix, input_size, hidden_size, dtype):
    """Create weight_ih{suffix} (4H, I), weight_hh{suffix} (4H, H), bias_ih/bias_hh{suffix} (4H,); U(+-1/sqrt(H))."""
    k = 1.0 / math.sqrt(hidden_size)
    for name, shape in (("weight_ih", (4 * hidden_size, input_size)), ("weight_hh", (4 * hidden_size, hidden_size)),
                        ("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,))):
        setattr(obj, name + suffix, Parameter(init.uniform(shape, k, dtype)))


class LSTMCell(Module):
    """One LSTM step, as torch.nn.LSTMCell. forward(x, (h, c)) -> (h', c'); x: (B, I)."""

    def __init__(self, input_size, hidden_size, dtype=None):
        self.input_size, self.hidden_size = input_size, hidden_size
        _lstm_params(self, "", input_size, hidden_size, dtype)

    def forward(self, x, state=None):
        """x: (B, I), state (h, c): (B, H) each, zeros if None -> (h', c'): (B, H) each."""
        where = f"LSTMCell(input_size={self.input_size})"
        check_float("input", x, where)
        check_ndim("input", x, (2,), where)
        check_last_dim("input", x, self.input_size, where)
        check_backend("input", x, self.weight_ih.data, where)
        xp = backend.get_array_module(x)
        if state is None:
            state = (xp.zeros((x.shape[0], self.hidden_size), x.dtype),) * 2
        h, c, self.cache = lstm_cell_forward(x, state[0], state[1], self.weight_ih.data, self.weight_hh.data,
                                             self.bias_ih.data, self.bias_hh.data)
        return h, c

    def backward(self, dh, dc=None):
        """dh, dc: gradients of (h', c') -> (dx, (dh_prev, dc_prev))."""
        dc = backend.get_array_module(dh).zeros_like(dh) if dc is None else dc
        dx, dh0, dc0, dwi, dwh, dbi, dbh = lstm_cell_backward(dh, dc, self.pop_cache())
        for p, g in ((self.weight_ih, dwi), (self.weight_hh, dwh), (self.bias_ih, dbi), (self.bias_hh, dbh)):
            self.accumulate(p, g)
        return dx, (dh0, dc0)


class LSTM(Module):
    """A stack of LSTM layers over a sequence, as torch.nn.LSTM (names weight_ih_l0, ..., gate order i, f, g, o).

    forward(x, state=None) -> (y, (h_n, c_n)); x: (B, T, I) with batch_first=True, else (T, B, I);
    state and (h_n, c_n): (num_layers, B, H). backward(dy, dstate=None) returns dx and stores the
    gradient of the initial state in ``self.dstate0 = (dh0, dc0)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=True, dropout=0.0, dtype=None):
        from .dropout import Dropout
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        for layer in range(num_layers):
            _lstm_params(self, f"_l{layer}", input_size if layer == 0 else hidden_size, hidden_size, dtype)
        self.dropouts = ModuleList(Dropout(dropout) for _ in range(num_layers - 1))   # between layers, as torch
        self.dstate0 = None

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"

    def _layer_params(self, layer):
        return [getattr(self, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x, state=None):
        """x: (B, T, I) if batch_first else (T, B, I); state (h0, c0): (num_layers, B, H) or None (zeros)
        -> y: (B, T, H) or (T, B, H), the last layer's h at every step, and (h_n, c_n): (num_layers, B, H)."""
        where = f"LSTM(input_size={self.input_size})"
        check_float("input", x, where)
        check_ndim("input", x, (3,), where)
        check_last_dim("input", x, self.input_size, where)
        check_backend("input", x, self.weight_ih_l0.data, where)
        xp = backend.get_array_module(x)
        x = x if self.batch_first else x.transpose(1, 0, 2)
        B, L, H = x.shape[0], self.num_layers, self.hidden_size
        if state is None:
            state = (xp.zeros((L, B, H), x.dtype), xp.zeros((L, B, H), x.dtype))
        elif tuple(state[0].shape) != (L, B, H) or tuple(state[1].shape) != (L, B, H):
            raise ValueError(f"{where}: state (h0, c0) must each have shape (num_layers, B, H) = {(L, B, H)}, "
                             f"got {tuple(state[0].shape)} and {tuple(state[1].shape)}")
        caches, h_n, c_n = [], [], []
        for layer in range(L):
            if layer > 0:
                x = self.dropouts[layer - 1](x)
            x, h, c, cache = lstm_forward(x, state[0][layer], state[1][layer],
                                          *(p.data for p in self._layer_params(layer)))
            caches.append(cache)
            h_n.append(h)
            c_n.append(c)
        self.cache = caches
        y = x if self.batch_first else x.transpose(1, 0, 2)
        return y, (xp.stack(h_n), xp.stack(c_n))

    def backward(self, dy, dstate=None):
        """dy: like y; dstate: (dh_n, dc_n) each (num_layers, B, H) or None -> dx like x."""
        caches = self.pop_cache()
        xp = backend.get_array_module(dy)
        dy = dy if self.batch_first else dy.transpose(1, 0, 2)
        B, H = dy.shape[0], self.hidden_size
        zeros = xp.zeros((B, H), dy.dtype)
        dh0, dc0 = [None] * self.num_layers, [None] * self.num_layers
        for layer in reversed(range(self.num_layers)):
            dhT = zeros if dstate is None else dstate[0][layer]
            dcT = zeros if dstate is None else dstate[1][layer]
            dy, dh0[layer], dc0[layer], *grads = lstm_backward(dy, dhT, dcT, caches[layer])
            for p, g in zip(self._layer_params(layer), grads):
                self.accumulate(p, g)
            if layer > 0:
                dy = self.dropouts[layer - 1].backward(dy)
        self.dstate0 = (xp.stack(dh0), xp.stack(dc0))
        return dy if self.batch_first else dy.transpose(1, 0, 2)
