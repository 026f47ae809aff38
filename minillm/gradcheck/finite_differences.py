"""Numerical gradient checks: the proof that each hand-written backward is right.

For a function out = f(x) and an upstream gradient dout (random, same shape as out)
we check the analytic dL/dx of the scalar L = sum(out * dout) against central
differences, entry by entry (float64, h = 1e-5):

    dL/dx_i  ~  (L(x + h e_i) - L(x - h e_i)) / (2h)        error O(h^2)

Large tensors are checked on a random sample of entries. The reported number is
the relative error over those entries,

    rel = ||analytic - numeric|| / (||analytic|| + ||numeric||)     (0 when both are 0)

which is ~1e-10 for a correct float64 backward and ~1e-2..1 for a wrong one.
"""
import numpy as np

from .. import backend

TOLERANCE = 1e-6


def rel_error(a, b):
    """||a - b|| / max(||a|| + ||b||, 1e-8).

    The floor (cs231n's) is for gradients that are exactly zero in theory, such as dq when every
    query sees one key: both sides are then rounding noise of ~1e-17, whose ratio means nothing,
    while a real error of 1e-14 or more against a zero gradient still fails a 1e-6 tolerance.
    """
    a, b = backend.to_numpy(a).astype(np.float64), backend.to_numpy(b).astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-8))


def _flatten(out):
    """A list of the arrays in a nested tuple/list of outputs."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flatten(o)]
    return [] if out is None else [out]


def _sample(n, max_entries, rng):
    return np.arange(n) if max_entries is None or n <= max_entries else rng.choice(n, max_entries, replace=False)


def numerical_gradient(loss_fn, x, entries, h=1e-5):
    """Central-difference dL/dx at the flat ``entries`` of x (changed in place, then restored)."""
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (it edits x in place)")
    flat = x.reshape(-1)   # a view: writing flat[i] changes x
    grads = np.empty(len(entries))
    for j, i in enumerate(entries):
        old = flat[i].item()
        flat[i] = old + h
        plus = loss_fn()
        flat[i] = old - h
        minus = loss_fn()
        flat[i] = old
        grads[j] = (plus - minus) / (2 * h)
    return grads


def random_like(out, seed=0):
    """Upstream gradients: standard normal arrays shaped like each output, on the output's device.

    Drawn from a stream of its own (seed + 10007), so dout never equals an input drawn with the same seed.
    """
    rng = np.random.default_rng(seed + 10007)
    return [backend.to_device_of(rng.standard_normal(a.shape).astype(a.dtype), a) for a in _flatten(out)]


def _dot(outs, douts):
    return sum(float((o * d).sum()) for o, d in zip(_flatten(outs), douts))


def check_arrays(loss_fn, named, analytic, max_entries=40, seed=0):
    """{name: rel error} comparing ``analytic[name]`` with the numerical gradient of loss_fn wrt named[name]."""
    rng = np.random.default_rng(seed)
    errors = {}
    for name, x in named.items():
        entries = _sample(x.size, max_entries, rng)
        num = numerical_gradient(loss_fn, x, entries)
        ana = backend.to_numpy(analytic[name]).reshape(-1)[entries]
        errors[name] = rel_error(ana, num)
    return errors


def check_pair(forward, backward, args, wrt, max_entries=40, seed=0):
    """Check a forward/backward function pair.

    forward(*args) -> (out, cache); backward(douts, cache) -> gradients, one per index in ``wrt``
    (douts is the list of upstream gradients, one per output array). Returns {"arg{i}": rel error}.
    """
    out, cache = forward(*args)
    douts = random_like(out, seed)
    grads = backward(douts, cache)
    loss = lambda: _dot(forward(*args)[0], douts)
    named = {f"arg{i}": args[i] for i in wrt}
    analytic = {f"arg{i}": g for i, g in zip(wrt, grads)}
    return check_arrays(loss, named, analytic, max_entries, seed)


def check_module(module, *inputs, backward=None, max_entries=40, seed=0, **kwargs):
    """Check every floating-point input and every parameter of ``module`` (float64 expected).

    module(*inputs, **kwargs) is run forward; ``backward(module, douts)`` returns the input
    gradients (default: ``module.backward(douts[0])``). Returns {name: rel error} with inputs
    named input0, input1, ... and parameters by their dotted names.
    """
    backward = backward or (lambda m, douts: m.backward(douts[0]))
    module.zero_grad()
    out = module(*inputs, **kwargs)
    douts = random_like(out, seed)
    dinputs = backward(module, douts)
    if not isinstance(dinputs, tuple):
        dinputs = (dinputs,)
    analytic = {name: p.grad.copy() for name, p in module.named_parameters()}
    named = {name: p.data for name, p in module.named_parameters()}
    for i, (x, dx) in enumerate(zip(inputs, dinputs)):
        if dx is not None and np.issubdtype(np.dtype(x.dtype), np.floating):
            named[f"input{i}"], analytic[f"input{i}"] = x, dx
    loss = lambda: _dot(module(*inputs, **kwargs), douts)
    errors = check_arrays(loss, named, analytic, max_entries, seed)
    module.cache = None   # the last numerical forward left a cache nobody will use
    return errors
