"""The pieces every exercise's tests are made of.

    gradient_case   a student's gradients against finite differences of the library's forward,
                    and against the library's own backward (with a diagnosis when they differ)
    layer_case      the student's function plugged into a real Module, then its gradient check
    run_test        one named test: passed, its relative error, and the message when it failed

Every test runs in float64 on small random inputs drawn from a fixed seed, so a failure
repeats exactly when the student runs the check again.
"""
import contextlib
import os
import traceback
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import backend
from ..gradcheck import TOLERANCE, check_arrays, check_module
from .diagnosis import Wrong, call, expect, unpack


NOT_DONE = "not done"


class Outcome(NamedTuple):
    """One test of one exercise."""
    name: str
    passed: bool
    error: float          # the largest relative error it measured (NaN when it measured none)
    message: str          # why it failed ("" when it passed)


def rng(seed):
    """The tests' random stream: the same inputs at every run."""
    return np.random.default_rng(seed)


def normal(seed, *shape):
    """A float64 standard-normal array of ``shape``."""
    return rng(seed).standard_normal(shape)


def gradient_case(loss, inputs, got, want, variants=None, factors=None):
    """The largest finite-difference rel. error of ``got``; Wrong if got differs from ``want``.

    loss: () -> float, the library's forward turned into a scalar (sum of out * dout);
    inputs: {name: array} the arrays loss reads (perturbed in place, then restored);
    got, want: {name: gradient} the student's and the library's;
    variants: {name: [(hint, wrong gradient)]}; factors: {name: {c: hint}} (see diagnosis.expect).
    Names in got but not in inputs (a gradient with nothing to perturb) are compared only.
    """
    for name in want:
        expect(name, got[name], want[name], variants=(variants or {}).get(name, ()),
               factors=(factors or {}).get(name))
    checked = {name: x for name, x in inputs.items() if want.get(name) is not None}
    errors = check_arrays(loss, checked, {name: np.asarray(got[name]) for name in checked}) if checked else {}
    worst = max(errors.values(), default=0.0)
    if worst > TOLERANCE:
        name = max(errors, key=errors.get)
        raise Wrong(f"finite differences disagree with {name} (rel. error {worst:.2e})", worst)
    return worst


def layer_case(module, inputs, backward=None, **kwargs):
    """The gradient check of ``module`` (float64) with the student's function already plugged in."""
    errors = check_module(module.to(dtype=np.float64), *inputs, backward=backward, **kwargs)
    worst = max(errors.values())
    if worst > TOLERANCE:
        name = max(errors, key=errors.get)
        raise Wrong(f"inside {type(module).__name__} the gradient check fails at {name} (rel. error {worst:.2e})",
                    worst)
    return worst


@contextlib.contextmanager
def plugged(namespace, **functions):
    """Replace names in a module (or class) for the duration, e.g. plugged(linear, linear_backward=f):
    the library's layers look their functions up there at every call, so they run the student's."""
    saved = {name: getattr(namespace, name) for name in functions}
    for name, fn in functions.items():
        setattr(namespace, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(namespace, name, fn)


@contextlib.contextmanager
def plain_kernels():
    """Run the library's lesson code, never an engine kernel: its caches are the ones the statements
    describe, and the reference is the formula itself."""
    old = os.environ.get("MINILLM_KERNELS")
    os.environ["MINILLM_KERNELS"] = "plain"
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINILLM_KERNELS"]
        else:
            os.environ["MINILLM_KERNELS"] = old


def run_test(name, test, student_file):
    """Run test() -> rel. error and turn what happens into an Outcome (never raises).

    A NotImplementedError is the starter's body: the message starts with NOT_DONE."""
    try:
        error = test()
        return Outcome(name, True, float(error), "")
    except Wrong as e:
        return Outcome(name, False, e.error, str(e))
    except NotImplementedError as e:
        return Outcome(name, False, float("nan"), f"{NOT_DONE}: {str(e) or 'a function raises NotImplementedError'}")
    except Exception as e:
        return Outcome(name, False, float("nan"), raised(e, student_file))


def raised(e, student_file):
    """'raised KeyError: 'x' (line 12 of linear.py)': the exception and the student's line that raised it."""
    where = ""
    path = str(Path(student_file).resolve()) if student_file else None
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if path and str(Path(frame.filename).resolve()) == path:
            where = f" (line {frame.lineno} of {Path(student_file).name}: {frame.line})"
            break
    text = str(e).strip().replace("\n", " ")[:300]
    return f"raised {type(e).__name__}: {text}{where}"


def compare_backward(student_fn, library_fn, args, arg_names, out_names, loss, inputs, variants=None, factors=None):
    """Call the student's backward on ``args`` (refusing in-place edits), the library's on the same
    args, then gradient_case. inputs: {gradient name: the array it is the gradient of}."""
    got = unpack(student_fn.__name__, call(student_fn, args, arg_names), out_names)
    want = library_fn(*args)
    want = [want] if len(out_names) == 1 else list(want)
    return gradient_case(loss, inputs, dict(zip(out_names, got)), dict(zip(out_names, want)), variants, factors)


def scalar_loss(forward, args, dout):
    """() -> sum(forward(*args)[0] * dout): the scalar whose gradient a backward returns for upstream dout."""
    return lambda: float((np.asarray(forward(*args)[0]) * dout).sum())


def method_case(make, inputs, student_backward, library_backward, variants=(), kwargs=None, seed=0):
    """A Module's backward written by the student: ``backward(module, dout)`` for a fresh module from
    make() (float64, seeded, so every call builds the same weights), compared with the library's
    on dx and every parameter's gradient, with ``variants`` [(hint, wrong backward)] for diagnosis,
    then the whole module's gradient check. Returns the largest finite-difference rel. error."""
    kwargs = kwargs or {}

    def run(backward):
        backend.manual_seed(seed)
        module = make().to(dtype=np.float64)
        module.zero_grad()
        out = module(*inputs, **kwargs)
        dx = backward(module, normal(seed + 10, *out.shape))
        return dx, {name: p.grad.copy() for name, p in module.named_parameters()}

    got_dx, got = run(student_backward)
    want_dx, want = run(library_backward)
    wrong = [(hint, run(backward)) for hint, backward in variants]
    if want_dx is not None:
        expect("dx", got_dx, want_dx, variants=[(hint, dx) for hint, (dx, _) in wrong])
    for name in want:
        expect(f"{name}.grad", got[name], want[name], variants=[(hint, grads[name]) for hint, (_, grads) in wrong])
    backend.manual_seed(seed)
    ids_only = want_dx is None
    return layer_case(make(), inputs, backward=lambda m, d: (student_backward(m, d[0]),) if ids_only
                      else student_backward(m, d[0]), **kwargs)
