"""Long short-term memory (Hochreiter & Schmidhuber 1997), one step and a whole sequence.

Letters: B batch, T time steps, I input size, H hidden size. Gate order i, f, g, o (as PyTorch).

    a = x W_ih^T + b_ih + h W_hh^T + b_hh      (B, 4H), split into a_i, a_f, a_g, a_o (B, H) each
    i = sigmoid(a_i)   input gate         f = sigmoid(a_f)   forget gate
    g = tanh(a_g)      candidate cell     o = sigmoid(a_o)   output gate
    c' = f * c + i * g                    h' = o * tanh(c')

A sequence applies the step for t = 0..T-1; backpropagation through time runs the
step backward for t = T-1..0, carrying dh and dc from step t to step t-1.
The public functions take and return batch-first arrays, x: (B, T, I), like PyTorch.
"""
import math
from typing import NamedTuple

from .. import backend
from ..kernels import dispatch
from . import init
from .activations import sigmoid
from .checks import check_backend, check_float, check_ndim, check_last_dim
from .module import Module, ModuleList, Parameter


# ============================================================================ one step
class LSTMCellCache(NamedTuple):
    """What lstm_cell_backward needs: the step's inputs, weights and gate values."""
    x: object          # (B, I)
    h: object          # (B, H) previous hidden state
    c: object          # (B, H) previous cell state
    w_ih: object       # (4H, I)
    w_hh: object       # (4H, H)
    i: object          # (B, H) input gate
    f: object          # (B, H) forget gate
    g: object          # (B, H) candidate cell
    o: object          # (B, H) output gate
    tanh_c: object     # (B, H) tanh(c')


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step. x: (B, I), h, c: (B, H), w_ih: (4H, I), w_hh: (4H, H), b_*: (4H,) -> h', c': (B, H), cache."""
    kernel = dispatch.find("lstm_cell", x, h, c, w_ih, w_hh, b_ih, b_hh)
    if kernel is not None:
        return kernel.forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    xp = backend.get_array_module(x)
    H = h.shape[1]
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh          # (B, I) x (I, 4H) + (B, H) x (H, 4H) -> (B, 4H)
    i = sigmoid(a[:, 0 * H:1 * H])
    f = sigmoid(a[:, 1 * H:2 * H])
    g = xp.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    c_next = f * c + i * g
    tanh_c = xp.tanh(c_next)
    h_next = o * tanh_c
    return h_next, c_next, LSTMCellCache(x, h, c, w_ih, w_hh, i, f, g, o, tanh_c)


def lstm_cell_backward(dh_next, dc_next, cache):
    """Given dL/dh', dL/dc' (B, H), return dx (B, I), dh (B, H), dc (B, H), dw_ih, dw_hh, db_ih, db_hh.

    h' = o * tanh(c')   =>  do = dh' * tanh(c'),   dc' += dh' * o * (1 - tanh(c')^2)
    c' = f * c + i * g  =>  df = dc' * c,  di = dc' * g,  dg = dc' * i,  dc = dc' * f
    gates               =>  da_i = di * i (1 - i), da_f = df * f (1 - f), da_g = dg * (1 - g^2), da_o = do * o (1 - o)
    a = x W_ih^T + h W_hh^T + b  =>  dx = da W_ih,  dh = da W_hh,  dW_ih = da^T x,  dW_hh = da^T h,  db = sum_b da
    """
    if not isinstance(cache, LSTMCellCache):
        return dispatch.backward("lstm_cell", dh_next, cache, dc_next)
    xp = backend.get_array_module(dh_next)
    x, h, c, w_ih, w_hh, i, f, g, o, tanh_c = cache
    do = dh_next * tanh_c
    dc_total = dc_next + dh_next * o * (1 - tanh_c ** 2)   # c' reaches the loss directly and through h'
    df = dc_total * c
    di = dc_total * g
    dg = dc_total * i
    dc = dc_total * f
    da = xp.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)],
                        axis=1)                         # 4 x (B, H) -> (B, 4H)
    db = da.sum(axis=0)                                 # (4H,)
    return da @ w_ih, da @ w_hh, dc, da.T @ x, da.T @ h, db, db


# ============================================================================ a sequence
class LSTMCache(NamedTuple):
    """The cache of every step, t = 0..T-1."""
    steps: list


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, I), h0, c0: (B, H) -> y: (B, T, H), h_T, c_T: (B, H), cache."""
    kernel = dispatch.find("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    if kernel is not None:
        return kernel.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    xp = backend.get_array_module(x)
    h, c, ys, steps = h0, c0, [], []
    for t in range(x.shape[1]):
        h, c, step = lstm_cell_forward(x[:, t], h, c, w_ih, w_hh, b_ih, b_hh)
        ys.append(h)
        steps.append(step)
    y = xp.stack(ys, axis=1)                            # T x (B, H) -> (B, T, H)
    return y, h, c, LSTMCache(steps)


def lstm_backward(dy, dh_T, dc_T, cache):
    """BPTT. dy: (B, T, H), dh_T, dc_T: (B, H) (gradients of the final state; zeros if unused).

    Returns dx (B, T, I), dh0, dc0 (B, H), dw_ih, dw_hh, db_ih, db_hh: the weights' gradients
    are the sums of every step's.
    """
    if not isinstance(cache, LSTMCache):
        return dispatch.backward("lstm", dy, cache, dh_T, dc_T)
    xp = backend.get_array_module(dy)
    dh, dc, dxs, total = dh_T, dc_T, [], None
    for t in reversed(range(len(cache.steps))):
        dx_t, dh, dc, *grads = lstm_cell_backward(dh + dy[:, t], dc, cache.steps[t])   # h_t feeds y_t and step t+1
        dxs.append(dx_t)
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    dx = xp.stack(dxs[::-1], axis=1)                    # T x (B, I) -> (B, T, I)
    return (dx, dh, dc, *total)


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
        expected = (x.shape[0], self.hidden_size)
        if len(state) != 2 or any(tuple(s.shape) != expected for s in state):
            raise ValueError(f"{where}: state (h, c) must be two arrays of shape (B, H) = {expected}, got "
                             f"{[tuple(getattr(s, 'shape', ())) for s in state]}")
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

    def layer_params(self, layer):
        """The Parameters weight_ih, weight_hh, bias_ih, bias_hh of one layer, in lstm_forward's order."""
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
        state = self.initial_state(x.shape[0], state, x.dtype, xp)
        caches, h_n, c_n = [], [], []
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropouts[layer - 1](x)
            x, h, c, cache = lstm_forward(x, state[0][layer], state[1][layer],
                                          *(p.data for p in self.layer_params(layer)))
            caches.append(cache)
            h_n.append(h)
            c_n.append(c)
        self.cache = caches
        y = x if self.batch_first else x.transpose(1, 0, 2)
        return y, (xp.stack(h_n), xp.stack(c_n))

    def initial_state(self, B, state, dtype, xp):
        """The state (h0, c0): (num_layers, B, H) each, zeros if None; a ValueError for other shapes."""
        L, H = self.num_layers, self.hidden_size
        if state is None:
            return xp.zeros((L, B, H), dtype), xp.zeros((L, B, H), dtype)
        if tuple(state[0].shape) != (L, B, H) or tuple(state[1].shape) != (L, B, H):
            raise ValueError(f"LSTM(input_size={self.input_size}): state (h0, c0) must each have shape "
                             f"(num_layers, B, H) = {(L, B, H)}, got {tuple(state[0].shape)} and {tuple(state[1].shape)}")
        return state

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
            for p, g in zip(self.layer_params(layer), grads):
                self.accumulate(p, g)
            if layer > 0:
                dy = self.dropouts[layer - 1].backward(dy)
        self.dstate0 = (xp.stack(dh0), xp.stack(dc0))
        return dy if self.batch_first else dy.transpose(1, 0, 2)
