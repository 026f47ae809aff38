"""GELU on the CPU: the lesson's formulas (minillm/nn/activations.py) with fewer, cheaper passes.

- tanh form as x sigmoid(2u): (1 + tanh u)/2 = 1/(1 + e^(-2u)), and NumPy's float32 exp costs
  about half its tanh. -2u is built as x (a + b x^2) in place (x ** 3 would call pow()). Below
  x ~ -9, e^(-2u) overflows to inf and the sigmoid is exactly 0, its right limit: the overflow
  warning is silenced.
- the exact form's float32 erfc (minillm/nn/special.py's formula) written in place.
- every formula runs over 64K-element blocks that stay in the L2 cache (blocks.py).
"""
import math
from typing import NamedTuple

import numpy as np

from minillm.nn.activations import GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI
from minillm.nn.special import ERFC_COEFFS

from . import numpy_float
from .blocks import for_blocks


class GELUCPUCache(NamedTuple):
    approximate: str
    x: np.ndarray          # contiguous input
    s: np.ndarray          # sigmoid(2u) ("tanh") or Phi(x) ("none")

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, approximate):
    """None for float NumPy arrays."""
    return numpy_float("x", x)


def forward(x, approximate="tanh"):
    """out = x sigmoid(2u) ("tanh") or x Phi(x) ("none"); x: (...) -> (...)."""
    x = np.ascontiguousarray(x)
    out, s = np.empty_like(x), np.empty_like(x)
    xf, of, sf = x.reshape(-1), out.reshape(-1), s.reshape(-1)
    formula = _tanh_form if approximate == "tanh" else _erf_form
    for_blocks(lambda i, j: formula(xf[i:j], of[i:j], sf[i:j]), x.size)
    return out, GELUCPUCache(approximate, x, s)


def backward(dout, cache):
    """dx = dout * GELU'(x), block by block."""
    approximate, x, s = cache
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    xf, sf, df, of = x.reshape(-1), s.reshape(-1), dout.reshape(-1), dx.reshape(-1)
    formula = _tanh_grad if approximate == "tanh" else _erf_grad
    for_blocks(lambda i, j: formula(xf[i:j], sf[i:j], df[i:j], of[i:j]), x.size)
    return dx


def _tanh_form(x, out, s):
    """out = x s, s = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    np.multiply(x, x, out=s)
    s *= -2.0 * GELU_CUBIC * SQRT_2_OVER_PI
    s -= 2.0 * SQRT_2_OVER_PI
    s *= x                                                 # s = -2u
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1.0
    np.divide(1.0, s, out=s)                               # s = sigmoid(2u)
    np.multiply(x, s, out=out)


def _tanh_grad(x, s, dout, dx):
    """dx = dout (s + x s (1 - s) 2 du/dx)."""
    du2 = x * x
    du2 *= 2.0 * 3 * GELU_CUBIC * SQRT_2_OVER_PI
    du2 += 2.0 * SQRT_2_OVER_PI                            # 2 du/dx
    np.subtract(1.0, s, out=dx)
    dx *= s                                                # s (1 - s), the sigmoid's slope
    dx *= x
    dx *= du2
    dx += s
    dx *= dout


def _erf_form(x, out, s):
    """out = x Phi(x), s = Phi(x) = erfc(-x / sqrt 2) / 2."""
    np.multiply(x, -INV_SQRT_2, out=out)                   # out: scratch for -x / sqrt 2
    if x.dtype == np.float32:
        _erfc_float32(out, s, np.empty_like(x))
    else:
        s[...] = np.frompyfunc(math.erfc, 1, 1)(out)
    s *= 0.5
    np.multiply(x, s, out=out)


def _erf_grad(x, s, dout, dx):
    """dx = dout (s + x phi(x)), s = Phi(x)."""
    np.multiply(x, x, out=dx)
    dx *= -0.5
    np.exp(dx, out=dx)
    dx *= INV_SQRT_2PI                                     # phi(x)
    dx *= x
    dx += s
    dx *= dout


def _erfc_float32(x, out, t):
    """out = erfc(x) for a float32 block, with t as scratch (minillm/nn/special.py's formula)."""
    f32 = np.float32
    np.abs(x, out=out)                                     # u = |x|
    np.multiply(out, f32(0.5), out=t)
    t += f32(1.0)
    np.reciprocal(t, out=t)                                # t = 1 / (1 + u/2)
    p = np.full_like(x, f32(ERFC_COEFFS[-1]))
    for c in ERFC_COEFFS[-2::-1]:                          # Horner: p = P(t)
        p *= t
        p += f32(c)
    out *= out
    p -= out                                               # -u^2 + P(t)
    with np.errstate(under="ignore"):                      # u > ~9.4: erfc is below float32's range
        np.exp(p, out=p)
    np.multiply(t, p, out=out)                             # erfc(u)
    np.subtract(f32(2.0), out, out=t)
    np.copyto(out, t, where=x < 0)                         # erfc(x) = 2 - erfc(-x)
