"""The LSTM language model's embedding and first LSTM layer with the embedding folded into W_ih.

The lesson (minillm/models/lstm_lm.py) looks each token up, e_t = E[idx_t], and the LSTM
multiplies every looked-up row by W_ih. Both are linear, so the product can be taken once per
row of the table instead of once per token:

    W_ih E[idx_t] + b = P[:, idx_t],    P = W_ih E^T + b: (4H, V)

and backward, with D[:, v] = sum of da over the positions where idx == v: (4H, V),

    dW_ih = sum_t da_t e_t^T = D E,     dE = D^T W_ih,     db = sum of D's columns.

With V = 256 rows against B*T = 2048 tokens, the three input products (forward, dW_ih, dE)
shrink eightfold and the (B, T, E) embeddings and their gradient are never formed. The
recurrence is cpu/fused_lstm.py's. The kernel takes the model only when this is cheaper
(V < B*T), with one LSTM layer and no dropout on the embeddings.
"""
from typing import NamedTuple

import numpy as np

from .fused_lstm import backprop, recurrence
from .jit import compiled, unavailable
from .reductions import sum_rows


class EmbeddingLSTMCache(NamedTuple):
    ids: np.ndarray         # (T, B) the token ids, time-major
    weight: np.ndarray      # (V, E) the embedding table
    w_ih: np.ndarray
    w_hh: np.ndarray
    hs: np.ndarray          # (T+1, H, B), as in fused_lstm
    cs: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray

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
    if lstm.num_layers != 1:
        return f"num_layers is {lstm.num_layers}: the table is folded into a single layer only"
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
    """idx: (B, T) -> h: (B, T, H), (h_n, c_n): (1, B, H) each, cache."""
    weight, lstm = model.embedding.weight.data, model.lstm
    w_ih, w_hh = lstm.weight_ih_l0.data, lstm.weight_hh_l0.data
    B, T = idx.shape
    h0, c0 = (s[0] for s in lstm.initial_state(B, state, weight.dtype, np))   # (1, B, H) -> (B, H), checked
    p = w_ih @ weight.T                                             # (4H, V): W_ih times every row of E
    p += (lstm.bias_ih_l0.data + lstm.bias_hh_l0.data)[:, None]
    ids = np.ascontiguousarray(idx.T)                               # (T, B)
    y, hs, cs, gates, tanh_c = recurrence(lambda t0, t1, ax: _gather(p, ids[t0:t1], ax), T, h0, c0, w_hh)
    state = (hs[T].T[None].copy(), cs[T].T[None].copy())
    return y, state, EmbeddingLSTMCache(ids, weight, w_ih, w_hh, hs, cs, gates, tanh_c)


def backward(dy, cache, model):
    """dy: (B, T, H) -> adds the gradients of the embedding and the LSTM's parameters to the model."""
    ids, weight, w_ih, w_hh, hs, cs, gates, tanh_c = cache
    B = dy.shape[0]
    zeros = np.zeros((B, w_hh.shape[1]), dtype=dy.dtype)
    d, dw_hh = np.zeros((w_hh.shape[0], weight.shape[0]), dtype=dy.dtype), np.zeros_like(w_hh)
    flat_ids = ids.reshape(-1)                                      # (t, b) order, as da's columns

    def on_chunk(t0, t1, da, h):
        _add_by_id(da, flat_ids[t0 * B:t1 * B], d)                 # D: (4H, V)
        dw_hh[...] += da @ h.T
    dh0, dc0 = backprop(dy, zeros, zeros, w_hh, hs, cs, gates, tanh_c, on_chunk)
    dweight = d.T @ w_ih
    if model.embedding.padding_idx is not None:
        dweight[model.embedding.padding_idx] = 0                    # as the lesson's embedding_backward
    db = sum_rows(d)[:, 0]
    lstm = model.lstm
    for p, g in ((model.embedding.weight, dweight), (lstm.weight_ih_l0, d @ weight),
                 (lstm.weight_hh_l0, dw_hh), (lstm.bias_ih_l0, db), (lstm.bias_hh_l0, db.copy())):
        model.accumulate(p, g)
    lstm.dstate0 = (dh0[None], dc0[None])
