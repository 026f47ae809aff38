"""The LSTM language model's embedding and first LSTM layer with the embedding folded into W_ih.

The lesson (minillm/models/lstm_lm.py) looks each token up, e_t = E[idx_t], and the LSTM
multiplies every looked-up row by W_ih. Both are linear, so the product can be taken once per
row of the table instead of once per token:

    W_ih E[idx_t] + b = P[:, idx_t],    P = W_ih E^T + b: (4H, V)

and backward, with D[:, v] = sum of da over the positions where idx == v: (4H, V),

    dW_ih = sum_t da_t e_t^T = D E,     dE = D^T W_ih,     db = sum of D's columns.

With V = 256 rows against B*T = 2048 tokens, the three input products (forward, dW_ih, dE)
shrink eightfold and the (B, T, E) embeddings and their gradient are never formed. The
recurrence is cpu/fused_lstm.py's. Layers above the first run as in the lesson's LSTM.forward
(its dropouts between layers, then lstm_forward, which the dispatch hands to cpu.fused_lstm).
The kernel takes the model only when the fold is cheaper (V < B*T) and the embeddings have no
dropout.
"""
from typing import NamedTuple

import numpy as np

from minillm.nn.lstm import lstm_backward, lstm_forward

from . import lstm_parallel
from .fused_lstm import backprop, recurrence
from .jit import compiled, unavailable
from .reductions import sum_rows


class EmbeddingLSTMCache(NamedTuple):
    ids: np.ndarray         # (T, B) the token ids, time-major
    upper: list             # the caches of layers 1 .. L-1 (lstm_forward's)
    weight: np.ndarray      # (V, E) the embedding table
    w_ih: np.ndarray
    w_hh: np.ndarray
    hs: np.ndarray          # (T+1, H, B), as in fused_lstm
    cs: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray
    parts: int              # P: the steps ran in lstm_parallel's P parts (1: fused_lstm's loop)

    def backward(self, dy, model):
        return backward(dy, self, model)


def accepts(idx, model):
    """None when the folded path computes the model's embedding and LSTM, else why not."""
    weight, lstm = model.embedding.weight.data, model.lstm
    reason = unavailable(weight=weight, w_ih=lstm.weight_ih_l0.data, w_hh=lstm.weight_hh_l0.data)
    if reason:
        return reason
    if type(idx) is not np.ndarray:
        return f"idx is a {type(idx).__name__}, not a NumPy array"
    if model.drop_in.active():
        return "dropout on the embeddings is active"
    if weight.shape[0] >= idx.size:
        return f"vocabulary {weight.shape[0]} >= {idx.size} tokens: one product per token is cheaper"
    return None


@compiled(one_thread=True)
def _gather(p, ids, ax):
    """ax[t, :, b] = p[:, ids[t, b]]: p (4H, V), ids (T, B) -> ax (T, 4H, B). One thread: about a
    millisecond of loads and stores, which waking a second thread did not shorten."""
    for t in range(ids.shape[0]):
        for r in range(p.shape[0]):
            for b in range(ids.shape[1]):
                ax[t, r, b] = p[r, ids[t, b]]


@compiled(one_thread=True)
def _add_by_id(da, ids, d):
    """d[:, v] += the sum of da's columns j with ids[j] == v: da (4H, N), ids (N,), d (4H, V).
    One thread, as _gather."""
    for r in range(da.shape[0]):
        for j in range(da.shape[1]):
            d[r, ids[j]] += da[r, j]


def forward(idx, model, state=None):
    """idx: (B, T) -> h: (B, T, H) of the last layer, (h_n, c_n): (num_layers, B, H) each, cache."""
    weight, lstm = model.embedding.weight.data, model.lstm
    w_ih, w_hh = lstm.weight_ih_l0.data, lstm.weight_hh_l0.data
    B, T = idx.shape
    h0, c0 = lstm.initial_state(B, state, weight.dtype, np)         # (L, B, H) each, checked
    p = w_ih @ weight.T                                             # (4H, V): W_ih times every row of E
    p += (lstm.bias_ih_l0.data + lstm.bias_hh_l0.data)[:, None]
    ids = np.ascontiguousarray(idx.T)                               # (T, B)
    P, ran = lstm_parallel.parts(w_hh.shape[1], w_hh.dtype), None
    if P > 1:                                                       # the units split between the cores
        order = lstm_parallel.part_order(w_hh.shape[1], P)
        ran = lstm_parallel.recurrence(("gathered", np.ascontiguousarray(p[order]), ids), h0[0], c0[0], w_hh, P)
    if ran is None:
        P, ran = 1, recurrence(lambda t0, t1, ax: _gather(p, ids[t0:t1], ax), T, h0[0], c0[0], w_hh)
    y, hs, cs, gates, tanh_c = ran
    h_n, c_n, upper = [hs[T].T], [cs[T].T], []
    for layer in range(1, lstm.num_layers):                         # as LSTM.forward
        y = lstm.dropouts[layer - 1](y)
        y, h, c, cache = lstm_forward(y, h0[layer], c0[layer], *(q.data for q in lstm.layer_params(layer)))
        upper.append(cache)
        h_n.append(h)
        c_n.append(c)
    state = (np.stack(h_n), np.stack(c_n))
    return y, state, EmbeddingLSTMCache(ids, upper, weight, w_ih, w_hh, hs, cs, gates, tanh_c, P)


def backward(dy, cache, model):
    """dy: (B, T, H) -> adds the gradients of the embedding and the LSTM's parameters to the model."""
    ids, upper, weight, w_ih, w_hh, hs, cs, gates, tanh_c, P = cache
    lstm = model.lstm
    B = dy.shape[0]
    zeros = np.zeros((B, w_hh.shape[1]), dtype=dy.dtype)
    dh0, dc0 = [None] * lstm.num_layers, [None] * lstm.num_layers
    for layer in reversed(range(1, lstm.num_layers)):               # as LSTM.backward
        dy, dh0[layer], dc0[layer], *grads = lstm_backward(dy, zeros, zeros, upper[layer - 1])
        for q, g in zip(lstm.layer_params(layer), grads):
            model.accumulate(q, g)
        dy = lstm.dropouts[layer - 1].backward(dy)
    ran = lstm_parallel.backprop(dy, zeros, zeros, w_hh, cs, gates, tanh_c, ids, weight.shape[0]) if P > 1 else None
    if ran is not None:                                             # da of all steps and D, in part order
        dh0[0], dc0[0], da, d = ran
        order = lstm_parallel.part_order(w_hh.shape[1], P)
        d = lstm_parallel.in_w_hh_order(d, order)
        dw_hh = lstm_parallel.in_w_hh_order(da @ lstm_parallel.h_columns(hs).T, order)
    else:
        if P > 1:
            gates = lstm_parallel.natural_gates(gates)              # the threads did not run: one thread
        d, dw_hh = np.zeros((w_hh.shape[0], weight.shape[0]), dtype=dy.dtype), np.zeros_like(w_hh)
        flat_ids = ids.reshape(-1)                                  # (t, b) order, as da's columns

        def on_chunk(t0, t1, da, h):
            _add_by_id(da, flat_ids[t0 * B:t1 * B], d)             # D: (4H, V)
            dw_hh[...] += da @ h.T
        dh0[0], dc0[0] = backprop(dy, zeros, zeros, w_hh, hs, cs, gates, tanh_c, on_chunk)
    dweight = d.T @ w_ih
    if model.embedding.padding_idx is not None:
        dweight[model.embedding.padding_idx] = 0                    # as the lesson's embedding_backward
    db = sum_rows(d)[:, 0]
    for q, g in ((model.embedding.weight, dweight), (lstm.weight_ih_l0, d @ weight),
                 (lstm.weight_hh_l0, dw_hh), (lstm.bias_ih_l0, db), (lstm.bias_hh_l0, db.copy())):
        model.accumulate(q, g)
    lstm.dstate0 = (np.stack(dh0), np.stack(dc0))
