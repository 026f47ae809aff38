"""Tests of the layer exercises: linear, embedding, layer_norm, dropout, positional.

Each ``tests_<exercise>(student)`` returns [(test name, test)], a test being a function of no
arguments that returns its largest relative error or raises diagnosis.Wrong.
"""
from functools import partial

import numpy as np

from .. import nn
from ..nn import dropout, linear, norm, positional
from .harness import compare_backward, layer_case, normal, plugged, rng, scalar_loss
from .diagnosis import call, expect, unpack

MEAN_FOR_SUM = ("mean where sum was meant: a parameter used at all N positions receives the sum of their "
                "gradients, not their mean")


# ============================================================================ linear
def tests_linear(student):
    cases = [("x (4, 3), weight (5, 3), bias", (4, 3), 5, True), ("x (2, 3, 4), weight (4, 4), no bias", (2, 3, 4), 4,
             False), ("x (1, 1, 7), weight (1, 7), bias", (1, 1, 7), 1, True)]
    tests = [(f"linear_backward: {label}", partial(_linear, student, shape, out, bias, seed))
             for seed, (label, shape, out, bias) in enumerate(cases)]
    return tests + [("inside nn.Linear(6, 4)", partial(_linear_layer, student))]


def _linear(student, shape, out, bias, seed):
    x, w = normal(seed, *shape), normal(seed + 10, out, shape[-1])
    b = normal(seed + 20, out) if bias else None
    y, cache = linear.linear_forward(x, w, b)
    dout = normal(seed + 30, *y.shape)
    per_position = {1.0 / (x.size // shape[-1]): MEAN_FOR_SUM}
    return compare_backward(student.linear_backward, linear.linear_backward, (dout, cache), ("dout", "cache"),
                            ("dx", "dweight", "dbias"), scalar_loss(linear.linear_forward, (x, w, b), dout),
                            {"dx": x, "dweight": w, "dbias": b},
                            factors={"dweight": per_position, "dbias": per_position})


def _linear_layer(student):
    with plugged(linear, linear_backward=student.linear_backward):
        return layer_case(nn.Linear(6, 4), (normal(5, 2, 3, 6),))


# ============================================================================ embedding
def tests_embedding(student):
    cases = [("ids (2, 3) with a repeated id", np.array([[1, 2, 2], [8, 0, 2]]), None),
             ("ids (5,), all different", np.array([4, 0, 3, 8, 6]), None),
             ("padding_idx=0", np.array([[0, 3, 0], [3, 5, 0]]), 0)]
    tests = [(f"embedding_backward: {label}", partial(_embedding, student, idx, pad, seed))
             for seed, (label, idx, pad) in enumerate(cases)]
    return tests + [("inside nn.Embedding(9, 4)", partial(_embedding_layer, student))]


def _embedding(student, idx, padding_idx, seed):
    w = normal(seed, 9, 4)
    out, cache = linear.embedding_forward(idx, w)
    dout = normal(seed + 10, *out.shape)
    last_wins = np.zeros_like(w)
    last_wins[idx.reshape(-1)] = dout.reshape(-1, 4)          # what assignment or a buffered += gives
    variants = [("a repeated id must receive the sum of the gradients of all its positions (xp.add.at), "
                 "not only one of them", last_wins)]
    if padding_idx is not None:
        variants.append((f"the padding row (padding_idx={padding_idx}) receives no gradient: set it to 0",
                         linear.embedding_backward(dout, cache)))
    # finite differences see the padding row's true gradient, which the convention discards: compare only
    inputs = {} if padding_idx is not None else {"dweight": w}
    return compare_backward(student.embedding_backward, linear.embedding_backward, (dout, cache, padding_idx),
                            ("dout", "cache", "padding_idx"), ("dweight",),
                            scalar_loss(linear.embedding_forward, (idx, w), dout), inputs,
                            variants={"dweight": variants})


def _embedding_layer(student):
    ids = np.array([[1, 2, 2], [8, 0, 1]])
    with plugged(linear, embedding_backward=student.embedding_backward):
        return layer_case(nn.Embedding(9, 4), (ids,), backward=lambda m, d: (m.backward(d[0]),))


# ============================================================================ layer norm
def tests_layer_norm(student):
    shapes = [(3, 6), (2, 3, 5), (1, 1, 7)]
    tests = [(f"layer_norm_backward: x {shape}", partial(_layer_norm, student, shape, seed))
             for seed, shape in enumerate(shapes)]
    return tests + [("inside nn.LayerNorm(6)", partial(_layer_norm_layer, student))]


def _layer_norm(student, shape, seed):
    C = shape[-1]
    x, w, b = normal(seed, *shape) * 2 + 1, normal(seed + 10, C), normal(seed + 20, C)
    out, cache = norm.layer_norm_forward(x, w, b)
    dout = normal(seed + 30, *shape)
    xhat, rstd = cache.xhat, cache.rstd
    dxhat = dout * w
    mean_term, var_term = dxhat.mean(-1, keepdims=True), xhat * (dxhat * xhat).mean(-1, keepdims=True)
    variants = [("a forgotten branch: x also reaches xhat through the mean, which adds -mean_c(dxhat)",
                 rstd * (dxhat - var_term)),
                ("a forgotten branch: x also reaches xhat through rstd (the variance), which adds "
                 "-xhat * mean_c(dxhat * xhat)", rstd * (dxhat - mean_term)),
                ("forgotten branches: x reaches xhat directly, through the mean and through the variance "
                 "(three terms)", rstd * dxhat)]
    per_position = {1.0 / (x.size // C): MEAN_FOR_SUM}
    return compare_backward(student.layer_norm_backward, norm.layer_norm_backward, (dout, cache), ("dout", "cache"),
                            ("dx", "dweight", "dbias"), scalar_loss(norm.layer_norm_forward, (x, w, b), dout),
                            {"dx": x, "dweight": w, "dbias": b}, variants={"dx": variants},
                            factors={"dweight": per_position, "dbias": per_position})


def _layer_norm_layer(student):
    with plugged(norm, layer_norm_backward=student.layer_norm_backward):
        return layer_case(nn.LayerNorm(6), (normal(5, 2, 3, 6),))


# ============================================================================ dropout
def tests_dropout(student):
    cases = [(0.3, (4, 5)), (0.5, (2, 3, 4)), (0.0, (3, 3))]
    tests = []
    for seed, (p, shape) in enumerate(cases):
        tests.append((f"dropout_forward: p={p}, x {shape}", partial(_dropout_forward, student, p, shape, seed)))
        tests.append((f"dropout_backward: p={p}, x {shape}", partial(_dropout_backward, student, p, shape, seed)))
    return tests + [("inside nn.Dropout(0.3) with a fixed mask", partial(_dropout_layer, student))]


def _dropout_inputs(p, shape, seed):
    return normal(seed, *shape), rng(seed + 10).random(shape) >= p


def _dropout_hints(p, wrong_mask_value):
    return ({1.0 - p: "missing 1/(1 - p): inverted dropout scales what it keeps, so the expected output is x"},
            [("the mask is True where an element is kept, not where it is dropped", wrong_mask_value)])


def _dropout_forward(student, p, shape, seed):
    x, mask = _dropout_inputs(p, shape, seed)
    got = unpack("dropout_forward", call(student.dropout_forward, (x, p, mask), ("x", "p", "mask")), ("out", "cache"))
    factors, variants = _dropout_hints(p, x * ~mask / (1 - p))
    return expect("out", got[0], dropout.dropout_forward(x, p, mask)[0], variants=variants, factors=factors)


def _dropout_backward(student, p, shape, seed):
    x, mask = _dropout_inputs(p, shape, seed)
    out, cache = dropout.dropout_forward(x, p, mask)
    dout = normal(seed + 20, *shape)
    factors, variants = _dropout_hints(p, dout * ~mask / (1 - p))
    return compare_backward(student.dropout_backward, dropout.dropout_backward, (dout, cache), ("dout", "cache"),
                            ("dx",), scalar_loss(dropout.dropout_forward, (x, p, mask), dout), {"dx": x},
                            variants={"dx": variants}, factors={"dx": factors})


def _dropout_layer(student):
    layer = nn.Dropout(0.3)
    layer.fixed_mask = rng(3).random((2, 3, 6)) >= 0.3
    with plugged(dropout, dropout_forward=student.dropout_forward, dropout_backward=student.dropout_backward):
        return layer_case(layer, (normal(5, 2, 3, 6),))


# ============================================================================ positional encoding
def tests_positional(student):
    tests = [(f"sinusoidal_table({n}, {dim})", partial(_table, student, n, dim)) for n, dim in
             ((10, 6), (7, 5), (1, 2), (50, 16))]
    tests += [(f"positional_backward: x {shape}", partial(_positional_backward, student, shape, seed))
              for seed, shape in enumerate([(2, 3, 4), (1, 5, 3)])]
    return tests + [("inside SinusoidalPositionalEncoding and LearnedPositionalEncoding",
                     partial(_positional_layers, student))]


def _table(student, max_len, dim):
    got = call(student.sinusoidal_table, (max_len, dim, np.float64), ("max_len", "dim", "dtype"))
    pos = np.arange(max_len)[:, None]
    pairs = np.arange(0, dim, 2)
    swapped = np.zeros((max_len, dim))
    swapped[:, 0::2] = np.cos(pos * np.exp(-np.log(1e4) * pairs / dim))
    swapped[:, 1::2] = np.sin(pos * np.exp(-np.log(1e4) * pairs / dim))[:, :dim // 2]
    half = np.zeros((max_len, dim))
    half[:, 0::2] = np.sin(pos * np.exp(-np.log(1e4) * (pairs // 2) / dim))
    half[:, 1::2] = np.cos(pos * np.exp(-np.log(1e4) * (pairs // 2) / dim))[:, :dim // 2]
    variants = [("even columns 2i hold sin(t / 10000^(2i/C)), odd columns 2i+1 hold cos", swapped),
                ("the exponent is 2i/C, with 2i the even column (10000^(2i/C)), not i/C", half)]
    return expect(f"sinusoidal_table({max_len}, {dim})", got, positional.sinusoidal_table(max_len, dim, np.float64),
                  variants=variants)


def _positional_backward(student, shape, seed):
    x, table = normal(seed, *shape), normal(seed + 10, *shape[1:])
    dout = normal(seed + 20, *shape)
    return compare_backward(student.positional_backward, positional.positional_backward, (dout,), ("dout",),
                            ("dx", "dtable"), scalar_loss(positional.positional_forward, (x, table), dout),
                            {"dx": x, "dtable": table})


def _positional_layers(student):
    with plugged(positional, sinusoidal_table=student.sinusoidal_table):
        table = nn.SinusoidalPositionalEncoding(6, 10, dtype=np.float64).table
    expect("SinusoidalPositionalEncoding(6, 10).table", table, positional.sinusoidal_table(10, 6, np.float64))
    with plugged(positional, positional_backward=student.positional_backward):
        return layer_case(nn.LearnedPositionalEncoding(6, 10), (normal(5, 2, 3, 6),))
