"""Tests of the activation and loss exercises: softmax, cross_entropy, gelu.

Each ``tests_<exercise>(student)`` returns [(test name, test)] (see grade_layers.py).
"""
from functools import partial

import numpy as np

from .. import nn
from ..gradcheck import TOLERANCE, check_arrays
from ..nn import activations, loss
from .diagnosis import Wrong
from .harness import compare_backward, layer_case, normal, plugged, scalar_loss

DIAGONAL_ONLY = ("only the diagonal of the softmax Jacobian: every output p_i depends on every input x_j, "
                 "so dx_i = p_i (dout_i - sum_j dout_j p_j)")


# ============================================================================ softmax
def tests_softmax(student):
    tests = []
    for seed, (shape, axis) in enumerate([((3, 5), -1), ((2, 4, 3), 1), ((1, 7), -1)]):
        for name in ("softmax", "log_softmax"):
            tests.append((f"{name}_backward: x {shape}, axis={axis}",
                          partial(_softmax, student, name, shape, axis, seed)))
    return tests + [("inside nn.Softmax(-1) and nn.LogSoftmax(-1)", partial(_softmax_layers, student))]


def _softmax(student, name, shape, axis, seed):
    forward, library = getattr(activations, f"{name}_forward"), getattr(activations, f"{name}_backward")
    x = normal(seed, *shape)
    out, cache = forward(x, axis)
    dout = normal(seed + 10, *shape)
    p = np.exp(out) if name == "log_softmax" else out
    diagonal = dout * (1 - p) if name == "log_softmax" else p * (1 - p) * dout
    other_axis = -1 if axis != -1 else 0
    wrong_axis = library(dout, cache._replace(axis=other_axis))
    variants = [(DIAGONAL_ONLY, diagonal), (f"the sum over j runs along cache.axis ({axis}), not axis {other_axis}",
                                            wrong_axis)]
    return compare_backward(getattr(student, f"{name}_backward"), library, (dout, cache), ("dout", "cache"), ("dx",),
                            scalar_loss(forward, (x, axis), dout), {"dx": x}, variants={"dx": variants})


def _softmax_layers(student):
    with plugged(activations, softmax_backward=student.softmax_backward,
                 log_softmax_backward=student.log_softmax_backward):
        return max(layer_case(nn.Softmax(-1), (normal(5, 2, 3, 6),)),
                   layer_case(nn.LogSoftmax(-1), (normal(6, 2, 3, 6),)))


# ============================================================================ cross-entropy
def tests_cross_entropy(student):
    targets = np.array([[0, 1, 2, 3], [4, 2, 2, 1]])
    cases = [("logits (6, 5)", (6, 5), np.array([0, 4, 2, 2, 1, 3]), {}, 1.0),
             ("logits (2, 4, 5), ignore_index=2", (2, 4, 5), targets, {"ignore_index": 2}, 1.0),
             ("label_smoothing=0.1, dloss=0.5", (2, 4, 5), targets, {"label_smoothing": 0.1}, 0.5)]
    tests = [(f"cross_entropy_backward: {label}", partial(_cross_entropy, student, shape, y, opts, dloss, seed))
             for seed, (label, shape, y, opts, dloss) in enumerate(cases)]
    return tests + [("inside nn.CrossEntropyLoss(ignore_index=2)", partial(_cross_entropy_layer, student))]


def _cross_entropy(student, shape, targets, options, dloss, seed):
    z = normal(seed, *shape) * 2
    value, cache = loss.cross_entropy_forward(z, targets, **options)
    N, count = targets.size, cache.count
    want = loss.cross_entropy_backward(cache, dloss)
    unmasked = (np.exp(cache.logp) - np.eye(shape[-1])[cache.targets]) * (dloss / count)
    if options.get("label_smoothing"):
        unmasked = None
    factors = {float(count): "missing 1/N: the loss is the mean over the N counted targets, so each row's "
                             "gradient is divided by N (cache.count)",
               1.0 / dloss: "the upstream gradient dloss multiplies the whole result"}
    if count != N:
        factors[count / N] = ("divide by the number of targets that are not ignore_index (cache.count), "
                              f"{count} here, not by all {N} positions")
    variants = [] if unmasked is None else [("the gradient ignores the mask: rows whose target is ignore_index "
                                             "get a zero gradient (cache.valid)", unmasked.reshape(want.shape))]
    return compare_backward(student.cross_entropy_backward, loss.cross_entropy_backward, (cache, dloss),
                            ("cache", "dloss"), ("dlogits",),
                            lambda: float(loss.cross_entropy_forward(z, targets, **options)[0]) * dloss,
                            {"dlogits": z}, variants={"dlogits": variants}, factors={"dlogits": factors})


def _cross_entropy_layer(student):
    targets, logits = np.array([[0, 1, 2, 3], [4, 2, 2, 1]]), normal(7, 2, 4, 5)
    module = nn.CrossEntropyLoss(ignore_index=2)
    with plugged(loss, cross_entropy_backward=student.cross_entropy_backward):
        module(logits, targets)
        dlogits = module.backward()
        errors = check_arrays(lambda: float(module(logits, targets)), {"logits": logits},
                              {"logits": np.asarray(dlogits)})
    if errors["logits"] > TOLERANCE:
        raise Wrong(f"inside CrossEntropyLoss the gradient check fails (rel. error {errors['logits']:.2e})",
                    errors["logits"])
    return errors["logits"]


# ============================================================================ GELU
def tests_gelu(student):
    cases = [("tanh", (3, 4)), ("tanh", (2, 3, 5)), ("none", (4, 6))]
    tests = [(f"gelu_backward: approximate={form!r}, x {shape}", partial(_gelu, student, form, shape, seed))
             for seed, (form, shape) in enumerate(cases)]
    return tests + [("inside nn.GELU('tanh') and nn.GELU('none')", partial(_gelu_layers, student))]


def _gelu(student, form, shape, seed):
    x = normal(seed, *shape) * 2
    out, cache = activations.gelu_forward(x, form)
    dout = normal(seed + 10, *shape)
    branch = "a forgotten branch of the product rule: out = x * s(x) has derivative s(x) + x s'(x)"
    if form == "tanh":
        t = cache.saved
        du = activations.SQRT_2_OVER_PI * (1 + 3 * activations.GELU_CUBIC * x ** 2)
        halves = (dout * 0.5 * (1 + t), dout * 0.5 * x * (1 - t ** 2) * du)
    else:
        halves = (dout * cache.saved, dout * x * activations.INV_SQRT_2PI * np.exp(-0.5 * x ** 2))
    variants = [(branch, halves[0]), (branch, halves[1])]
    return compare_backward(student.gelu_backward, activations.gelu_backward, (dout, cache), ("dout", "cache"),
                            ("dx",), scalar_loss(activations.gelu_forward, (x, form), dout), {"dx": x},
                            variants={"dx": variants})


def _gelu_layers(student):
    with plugged(activations, gelu_backward=student.gelu_backward):
        return max(layer_case(nn.GELU("tanh"), (normal(5, 2, 3, 6),)),
                   layer_case(nn.GELU("none"), (normal(6, 2, 3, 6),)))
