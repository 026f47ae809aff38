"""GELU as one compiled loop over the elements (Numba), shared between threads.

The lesson's two forms (minillm/nn/activations.py), each element read once and written once:

    tanh:  u = sqrt(2/pi) (x + 0.044715 x^3),  s = (1 + tanh u)/2 = 1 / (1 + exp(-2u)),  out = x s
           dx = dout (s + x s (1 - s) 2 du/dx),  du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    none:  Phi = erfc(-x / sqrt 2) / 2,  out = x Phi
           dx = dout (Phi + x exp(-x^2/2) / sqrt(2 pi))

float32 uses the lesson's own erfc formula (minillm/nn/special.py: t exp(-u^2 + P(t)), the same
coefficients); float64 uses math.erfc. Every exp is vector_exp.exp (in float32 a polynomial the
compiler runs in vector registers), so each form is one loop forward and one backward. The cache
keeps x and s (or Phi).
"""
import math
from typing import NamedTuple

import numpy as np

from minillm.nn.activations import GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI
from minillm.nn.special import ERFC_COEFFS

from .jit import SERIAL_BELOW, compiled, prange, unavailable
from .vector_exp import exp


class FusedGELUCache(NamedTuple):
    approximate: str
    x: np.ndarray          # (n,) the input, flat
    saved: np.ndarray      # (n,) s = sigmoid(2u) ("tanh") or Phi(x) ("none")
    shape: tuple

    def backward(self, dout):
        return backward(dout, self)


def accepts(x, approximate):
    """None for NumPy float arrays, with Numba installed."""
    return unavailable(x=x)


def _constants(dtype):
    """The formulas' numbers as an array of the data's dtype (Numba would make Python floats float64)."""
    return np.array([SQRT_2_OVER_PI, GELU_CUBIC, 0.5, 1.0, 3.0 * GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, 2.0],
                    dtype=dtype)


@compiled(serial_below=SERIAL_BELOW)
def _tanh_forward(x, k, s, out):
    """s = sigmoid(2u) = (1 + tanh u) / 2 = 1 / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3); out = x s.
    Below x of about -9, exp(-2u) overflows to inf and s = 0, its limit."""
    for i in prange(x.shape[0]):
        v = x[i]
        si = k[3] / (k[3] + exp(-k[7] * k[0] * (v + k[1] * v * v * v)))
        s[i] = si
        out[i] = v * si


@compiled(serial_below=SERIAL_BELOW)
def _tanh_backward(x, s, dout, k, dx):
    """dx = dout (s + x s (1 - s) 2 du/dx), s = sigmoid(2u), 2 du/dx = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    for i in prange(x.shape[0]):
        v, si = x[i], s[i]
        du2 = k[7] * k[0] * (k[3] + k[4] * v * v)
        dx[i] = dout[i] * (si + v * si * (k[3] - si) * du2)


_ERFC32 = np.array(ERFC_COEFFS, dtype=np.float32)
assert _ERFC32.shape == (10,), "_erf_forward32 writes out the 10 coefficients' Horner steps"


@compiled(serial_below=SERIAL_BELOW)
def _erf_forward32(x, k, c, out, phi):
    """phi = erfc(z) / 2, z = -x / sqrt 2: t = 1 / (1 + u/2), u = |z|, erfc(u) = t exp(-u^2 + P(t)),
    erfc(-u) = 2 - erfc(u); out = x phi. P(t) is written out (Horner): with a loop over the
    coefficients inside the row loop, the parallel loop ran 15 times slower."""
    for i in prange(x.shape[0]):
        z = -x[i] * k[5]
        u = np.abs(z)
        t = k[3] / (k[3] + k[2] * u)
        p = ((((((((c[9] * t + c[8]) * t + c[7]) * t + c[6]) * t + c[5]) * t + c[4]) * t + c[3]) * t
              + c[2]) * t + c[1]) * t + c[0]
        y = t * exp(-u * u + p)
        y = k[7] - y if z < 0 else y
        phi[i] = k[2] * y
        out[i] = x[i] * phi[i]


@compiled(serial_below=SERIAL_BELOW)
def _erf_forward64(x, k, out, phi):
    for i in prange(x.shape[0]):
        phi[i] = k[2] * math.erfc(-x[i] * k[5])
        out[i] = x[i] * phi[i]


@compiled(serial_below=SERIAL_BELOW)
def _erf_backward(x, phi, dout, k, dx):
    for i in prange(x.shape[0]):
        v = x[i]
        dx[i] = dout[i] * (phi[i] + v * k[6] * exp(-k[2] * v * v))


def forward(x, approximate="tanh"):
    """out = GELU(x) elementwise; x: (...) -> (...)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out, saved = np.empty_like(flat), np.empty_like(flat)
    k = _constants(flat.dtype)
    if approximate == "tanh":
        _tanh_forward(flat, k, saved, out)
    elif flat.dtype == np.float32:
        _erf_forward32(flat, k, _ERFC32, out, saved)
    else:
        _erf_forward64(flat, k, out, saved)
    return out.reshape(x.shape), FusedGELUCache(approximate, flat, saved, x.shape)


def backward(dout, cache):
    """dx = dout * GELU'(x)."""
    approximate, x, saved, shape = cache
    d = np.ascontiguousarray(dout, dtype=x.dtype).reshape(-1)
    dx = np.empty_like(d)
    (_tanh_backward if approximate == "tanh" else _erf_backward)(x, saved, d, _constants(x.dtype), dx)
    return dx.reshape(shape)
