"""Tests of the recurrent exercises: lstm_cell (one step backward) and bptt (a whole sequence).

Each ``tests_<exercise>(student)`` returns [(test name, test)] (see grade_layers.py).
"""
from functools import partial

import numpy as np

from .. import nn
from ..nn import lstm
from .harness import compare_backward, layer_case, normal, plugged

CELL_GRADS = ("dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")
SEQUENCE_GRADS = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def _weights(I, H, seed):
    return [normal(seed + i, *shape) * 0.5 for i, shape in enumerate([(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)])]


# ============================================================================ one step
def tests_lstm_cell(student):
    cases = [(2, 3, 4, True), (1, 5, 2, True), (3, 2, 3, False)]
    tests = [(f"lstm_cell_backward: B {B}, I {I}, H {H}{'' if dc else ', dc_next = 0'}",
              partial(_cell, student, B, I, H, dc, seed)) for seed, (B, I, H, dc) in enumerate(cases)]
    return tests + [("inside nn.LSTMCell(3, 4)", partial(_cell_layer, student))]


def _cell(student, B, I, H, with_dc, seed):
    x, h, c = normal(seed, B, I), normal(seed + 10, B, H), normal(seed + 20, B, H)
    weights = _weights(I, H, seed + 30)
    args = (x, h, c, *weights)
    h_next, c_next, cache = lstm.lstm_cell_forward(*args)
    dh_next = normal(seed + 40, B, H)
    dc_next = normal(seed + 50, B, H) if with_dc else np.zeros((B, H))

    def loss():
        h2, c2, _ = lstm.lstm_cell_forward(*args)
        return float((h2 * dh_next).sum() + (c2 * dc_next).sum())

    # c' reaches the loss directly and through h' = o tanh(c'); without the second path, the step
    # computes what the library does for an upstream dc' smaller by dh' o (1 - tanh(c')^2)
    through_h = dh_next * cache.o * (1 - cache.tanh_c ** 2)
    forgotten = lstm.lstm_cell_backward(dh_next, dc_next - through_h, cache)
    hint = ("a forgotten branch: c' reaches the loss directly (dc') and through h' = o * tanh(c'), "
            "so dc' += dh' * o * (1 - tanh(c')^2)")
    variants = {name: [(hint, g)] for name, g in zip(CELL_GRADS, forgotten)}
    return compare_backward(student.lstm_cell_backward, lstm.lstm_cell_backward, (dh_next, dc_next, cache),
                            ("dh_next", "dc_next", "cache"), CELL_GRADS, loss, dict(zip(CELL_GRADS, args)),
                            variants=variants)


def _cell_layer(student):
    state = (normal(1, 2, 4), normal(2, 2, 4))
    with plugged(lstm, lstm_cell_backward=student.lstm_cell_backward):
        return layer_case(nn.LSTMCell(3, 4), (normal(0, 2, 3), state),
                          backward=lambda m, d: (m.backward(d[0], d[1])[0],))


# ============================================================================ a sequence
def tests_bptt(student):
    cases = [(2, 4, 3, 5, False), (1, 1, 2, 3, False), (3, 6, 2, 2, True)]
    tests = [(f"lstm_backward: B {B}, T {T}, I {I}, H {H}{', with dh_T and dc_T' if final else ''}",
              partial(_sequence, student, B, T, I, H, final, seed)) for seed, (B, T, I, H, final) in enumerate(cases)]
    return tests + [("inside nn.LSTM(3, 5, num_layers=2)", partial(_sequence_layer, student))]


def _per_step(dy, dh_T, dc_T, cache):
    """Each step's (dx_t, dh, dc, dw_ih, dw_hh, db_ih, db_hh) as the library's loop computes them, t = T-1 .. 0."""
    dh, dc, steps = dh_T, dc_T, []
    for t in reversed(range(len(cache.steps))):
        step = lstm.lstm_cell_backward(dh + dy[:, t], dc, cache.steps[t])
        dh, dc = step[1], step[2]
        steps.append(step)
    return steps


def _sequence(student, B, T, I, H, final, seed):
    x, h0, c0 = normal(seed, B, T, I), normal(seed + 10, B, H), normal(seed + 20, B, H)
    weights = _weights(I, H, seed + 30)
    args = (x, h0, c0, *weights)
    y, h_T, c_T, cache = lstm.lstm_forward(*args)
    dy = normal(seed + 40, B, T, H)
    dh_T, dc_T = (normal(seed + 50, B, H), normal(seed + 60, B, H)) if final else (np.zeros((B, H)), np.zeros((B, H)))

    def loss():
        y2, h2, c2, _ = lstm.lstm_forward(*args)
        return float((y2 * dy).sum() + (h2 * dh_T).sum() + (c2 * dc_T).sum())

    no_output = lstm.lstm_backward(np.zeros_like(dy), dh_T, dc_T, cache)
    steps = _per_step(dy, dh_T, dc_T, cache)
    variants = {name: [("a forgotten branch: h_t feeds both y_t and step t+1, so step t starts from "
                        "dh + dy[:, t]", g)] for name, g in zip(SEQUENCE_GRADS, no_output)}
    for i, name in enumerate(SEQUENCE_GRADS[3:], start=3):
        for which, step in (("step 0's", steps[-1]), (f"step {T - 1}'s", steps[0])):
            if T > 1:
                variants[name].append((f"{name} is only {which} share: the weights are shared by every step, so "
                                       "their gradients are summed over t, not overwritten", step[i]))
    if T > 1:
        variants["dx"].append(("dx[:, t] must line up with x[:, t]: the loop runs backward in time, so reverse "
                               "the collected steps",
                               lstm.lstm_backward(dy, dh_T, dc_T, cache)[0][:, ::-1]))
    return compare_backward(student.lstm_backward, lstm.lstm_backward, (dy, dh_T, dc_T, cache),
                            ("dy", "dh_T", "dc_T", "cache"), SEQUENCE_GRADS, loss, dict(zip(SEQUENCE_GRADS, args)),
                            variants=variants)


def _sequence_layer(student):
    state = (normal(1, 2, 2, 5), normal(2, 2, 2, 5))
    with plugged(lstm, lstm_backward=student.lstm_backward):
        return layer_case(nn.LSTM(3, 5, num_layers=2), (normal(0, 2, 4, 3), state),
                          backward=lambda m, d: m.backward(d[0], (d[1], d[2])))
