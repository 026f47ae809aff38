"""Comparing a student's result with the library's, and naming the mistake when they differ.

A test calls ``expect(label, got, want, ...)`` for each array a student's function returns. It
raises ``Wrong`` with a message when the two differ, after trying, in this order:

    type and count     a tuple of the wrong length, None where an array was due
    shape              a transposed shape, a missing sum over an axis
    dtype              float32 where the float64 inputs asked for float64
    known mistakes     the exercise's own wrong formulas ("variants"), computed on the same inputs
    transposed values  got == want^T (a square weight)
    a constant factor  got == c * want: -1, 1/N (mean for sum), N (a missing 1/N), named by the test
    float32 rounding   an error of 1e-8 .. 1e-5: the right formula through a float32 intermediate

The relative error is the one of the gradient checks, ||a - b|| / max(||a|| + ||b||, 1e-8).
"""
import copy

import numpy as np

from ..gradcheck import rel_error

LIBRARY_TOLERANCE = 1e-8     # float64, the same formula in another order stays below ~1e-13
FLOAT32_HINT = ("float32 where float64 was needed: the checks run in float64 and float32 rounding (~1e-7) "
                "fails them; create arrays with the inputs' dtype (for example xp.zeros(shape, dtype=dout.dtype))")


class Wrong(Exception):
    """A test's failure: ``message`` says what differs and, when recognised, why; ``error`` is the rel. error."""

    def __init__(self, message, error=float("nan")):
        super().__init__(message)
        self.error = error


def as_array(label, value):
    """value as an ndarray (lists and scalars allowed), or Wrong naming ``label``."""
    if value is None:
        raise Wrong(f"{label} is None, expected an array")
    try:
        return np.asarray(value)
    except Exception:
        raise Wrong(f"{label} is a {type(value).__name__}, expected an array") from None


def unpack(label, value, names):
    """The tuple ``value`` as a list of len(names), or Wrong saying what was returned instead."""
    if len(names) == 1:
        return [value]
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        count = len(value) if isinstance(value, (tuple, list)) else f"one {type(value).__name__}"
        raise Wrong(f"{label} returned {count} value(s), expected {len(names)}: ({', '.join(names)})")
    return list(value)


def expect(label, got, want, tol=LIBRARY_TOLERANCE, variants=(), factors=None):
    """The rel. error of got against want; Wrong with a diagnosis if it exceeds ``tol``.

    variants: (hint, wrong_value) pairs, the results of known mistakes on the same inputs.
    factors: {c: hint} for got == c * want (c = -1 is always recognised as a sign error).
    """
    if want is None:
        if got is not None:
            raise Wrong(f"{label} should be None here (there is no such parameter), got {type(got).__name__}")
        return 0.0
    got = as_array(label, got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise Wrong(f"{label} has shape {got.shape}, expected {want.shape}" + _shape_hint(got.shape, want.shape))
    if want.dtype == np.float64 and got.dtype == np.float32:
        raise Wrong(f"{label} is float32. {FLOAT32_HINT}", rel_error(got, want))
    if want.dtype.kind in "biu" or want.dtype == bool:
        if not np.array_equal(got, want):
            raise Wrong(f"{label} differs from the library's at {int((got != want).sum())} of {want.size} entries"
                        + _known(got, want, variants))
        return 0.0
    error = rel_error(got, want)
    if error <= tol:
        return error
    raise Wrong(f"{label} differs from the library's (rel. error {error:.2e})" + _known(got, want, variants, factors),
                error)


def _shape_hint(got, want):
    if len(got) == 2 and got == want[::-1]:
        return ": the transposed shape (a weight's gradient has the weight's shape, (out, in))"
    if len(got) == len(want) + 1 and got[1:] == want:
        return f": sum over the leading axis (size {got[0]}), which the forward broadcast"
    return ""


def _known(got, want, variants, factors=None):
    """': <hint>' for the first known mistake that explains got, else ''."""
    for hint, wrong in variants:
        wrong = np.asarray(wrong)
        if wrong.shape == got.shape and rel_error(got, wrong) <= 1e-6:
            return f": {hint}"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and rel_error(got, want.T) <= 1e-6:
        return ": it is the transpose of the right gradient (dW = dout^T x has the weight's (out, in) layout)"
    c = _factor(got, want)
    if c is not None:
        for value, hint in (factors or {}).items():
            if abs(c - value) <= 1e-6 * abs(value):
                return f": {hint}"
        if abs(c + 1) <= 1e-6:
            return ": the sign is flipped"
        return f": it is {c:.6g} times the right answer, a constant factor is wrong"
    if rel_error(got, want) < 1e-5:     # right formula, float32 precision: a float32 array on the way
        return f": the error is the size of float32 rounding. {FLOAT32_HINT}"
    return ""


def _factor(got, want):
    """c when got == c * want (c != 1) to 1e-6, else None."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    norm = float((want * want).sum())
    if norm == 0:
        return None
    c = float((got * want).sum()) / norm
    if abs(c - 1) <= 1e-6 or rel_error(got, c * want) > 1e-6:
        return None
    return c


# ---------------------------------------------------------------------------- calling student code
def snapshot(values):
    """Deep copies of every ndarray and list reachable from ``values`` (tuples, NamedTuples, lists)."""
    return copy.deepcopy(list(values))


def changed_inputs(before, after, names):
    """The names of the arguments whose arrays (or lists) differ from their snapshot."""
    return [name for name, a, b in zip(names, before, after) if not _same(a, b)]


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__") and not callable(a):
        return all(_same(v, getattr(b, k, None)) for k, v in vars(a).items())
    return True


def call(fn, args, names, label=None):
    """fn(*args), refusing a function that changed its inputs in place (a cache a second backward
    would read, a caller's logits): Wrong names the argument."""
    before = snapshot(args)
    out = fn(*args)
    changed = changed_inputs(before, args, names)
    if changed:
        raise Wrong(f"{label or fn.__name__} changed its input {', '.join(changed)} in place (an overwritten "
                    "cache): the caller still needs it, so write results into new arrays")
    return out
