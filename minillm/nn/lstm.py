"""Long short-term memory (Hochreiter & Schmidhuber 1997), one step and a whole sequence.

Letters: B batch, T time steps, I input size, H hidden size. Gate order i, f, g, o (as PyTorch).

    a = x W_ih^T + b_ih + h W_hh^T + b_hh       (B, 4H), split into a_i, a_f, a_g, a_o
    i = sigmoid(a_i)   input gate         f = sigmoid(a_f)   forget gate
    g = tanh(a_g)      candidate cell     o = sigmoid(a_o)   output gate
    c' = f * c + i * g                    h' = o * tanh(c')

A sequence applies the step for t = 0..T-1; backpropagation through time runs the
step backward for t = T-1..0, carrying dh and dc from step t to step t-1.
For speed the input half of ``a`` (x W_ih^T + b) is one matmul for all T steps;
inside the loop there is one (B, H) x (H, 4H) matmul per step.
"""
import math

from .. import backend
from . import init
from .checks import check_backend, check_float, check_ndim, check_last_dim
from .module import Module, ModuleList, Parameter


def _sigmoid(x, xp):
    return 0.5 * (1.0 + xp.tanh(0.5 * x))     # = 1 / (1 + e^-x), without overflow for large |x|


# ============================================================================ one step
def lstm_pointwise_forward(a, c):
    """From pre-activations a: (B, 4H) and cell c: (B, H) to (h', c'); the cache keeps the gate outputs."""
    xp = backend.get_array_module(a)
    H = c.shape[-1]
    i, f, o = (_sigmoid(a[:, k * H:(k + 1) * H], xp) for k in (0, 1, 3))
    g = xp.tanh(a[:, 2 * H:3 * H])
    c_next = f * c + i * g
    tc = xp.tanh(c_next)
    return o * tc, c_next, (i, f, g, o, c, tc)


def lstm_pointwise_backward(dh_next, dc_next, cache):
    """Given dL/dh', dL/dc' (B, H), return da (B, 4H) and dc (B, H).

    h' = o * tanh(c')   =>  do = dh' * tanh(c'),   dc' += dh' * o * (1 - tanh(c')^2)
    c' = f * c + i * g  =>  df = dc' * c,  di = dc' * g,  dg = dc' * i,  dc = dc' * f
    sigmoid' = s (1 - s),  tanh' = 1 - t^2  (from the saved outputs)
    """
    i, f, g, o, c, tc = cache
    xp = backend.get_array_module(dh_next)
    dc_total = dc_next + dh_next * o * (1.0 - tc * tc)
    da = xp.concatenate([dc_total * g * i * (1.0 - i),          # d a_i
                         dc_total * c * f * (1.0 - f),          # d a_f
                         dc_total * i * (1.0 - g * g),          # d a_g
                         dh_next * tc * o * (1.0 - o)], axis=1)  # d a_o
    return da, dc_total * f


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step. x: (B, I), h, c: (B, H), w_ih: (4H, I), w_hh: (4H, H), b_*: (4H,) -> h', c': (B, H)."""
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh                     # (B, 4H)
    h_next, c_next, pw = lstm_pointwise_forward(a, c)
    return h_next, c_next, (x, h, w_ih, w_hh, pw)


def lstm_cell_backward(dh_next, dc_next, cache):
    """Return dx (B, I), dh (B, H), dc (B, H), dw_ih, dw_hh, db_ih, db_hh (same shapes as forward).

    a = x W_ih^T + h W_hh^T + b  =>  dx = da W_ih,  dh = da W_hh,  dW_ih = da^T x,  dW_hh = da^T h,  db = sum da
    """
    x, h, w_ih, w_hh, pw = cache
    da, dc = lstm_pointwise_backward(dh_next, dc_next, pw)
    db = da.sum(axis=0)
    return da @ w_ih, da @ w_hh, dc, da.T @ x, da.T @ h, db, db


# ============================================================================ a sequence
def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H)."""
    xp = backend.get_array_module(x)
    B, T, _ = x.shape
    ax = (x.reshape(B * T, -1) @ w_ih.T + (b_ih + b_hh)).reshape(B, T, -1)   # (B, T, 4H): all steps at once
    y = xp.empty((B, T, h0.shape[1]), dtype=x.dtype)
    h, c, steps = h0, c0, []
    for t in range(T):
        h_prev = h
        h, c, pw = lstm_pointwise_forward(ax[:, t] + h @ w_hh.T, c)
        y[:, t] = h
        steps.append((h_prev, pw))
    return y, h, c, (x, w_ih, w_hh, steps)


def lstm_backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) (gradients of the final state; zeros if unused).

    Returns dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    x, w_ih, w_hh, steps = cache
    xp = backend.get_array_module(dy)
    B, T, _ = x.shape
    da_all = xp.empty((B, T, w_ih.shape[0]), dtype=dy.dtype)
    h_prev_all = xp.empty((B, T, w_hh.shape[1]), dtype=dy.dtype)
    dh, dc = dh_T, dc_T
    for t in reversed(range(T)):
        h_prev, pw = steps[t]
        da, dc = lstm_pointwise_backward(dh + dy[:, t], dc, pw)   # h_t feeds y_t and step t+1
        dh = da @ w_hh                                          # a_t depends on h_{t-1} through W_hh
        da_all[:, t], h_prev_all[:, t] = da, h_prev
    da2 = da_all.reshape(B * T, -1)
    dx = (da2 @ w_ih).reshape(x.shape)
    dw_ih = da2.T @ x.reshape(B * T, -1)
    dw_hh = da2.T @ h_prev_all.reshape(B * T, -1)
    db = da2.sum(axis=0)
    return dx, dh, dc, dw_ih, dw_hh, db, db.copy()


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

    def _layer_params(self, layer):
        return [getattr(self, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x, state=None):
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
