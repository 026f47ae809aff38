"""GELU as one compiled loop over the elements (Numba), shared between threads.

The lesson's two forms (minillm/nn/activations.py), each element read once and written once:

    tanh:  u = sqrt(2/pi) (x + 0.044715 x^3),  s = (1 + tanh u)/2 = 1 / (1 + exp(-2u)),  out = x s
           dx = dout (s + x s (1 - s) 2 du/dx),  du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    none:  Phi = erfc(-x / sqrt 2) / 2,  out = x Phi
           dx = dout (Phi + x exp(-x^2/2) / sqrt(2 pi))

float32 uses the lesson's own erfc formula (minillm/nn/special.py: t exp(-u^2 + P(t)), the same
coefficients); float64 uses math.erfc. The exp of the tanh form is NumPy's vectorised one, between
two compiled loops. The cache keeps x and s (or Phi).
"""
import math
from typing import NamedTuple

import numpy as np

from minillm.nn.activations import GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI
from minillm.nn.special import ERFC_COEFFS

from .jit import SERIAL_BELOW, compiled, prange, unavailable


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
def _minus_2u(x, k, e):
    """e = -2u = -2 sqrt(2/pi) (x + 0.044715 x^3)."""
    for i in prange(x.shape[0]):
        v = x[i]
        e[i] = -k[7] * k[0] * (v + k[1] * v * v * v)


@compiled(serial_below=SERIAL_BELOW)
def _tanh_finish(x, k, e, out):
    """e = exp(-2u) -> s = sigmoid(2u) = (1 + tanh u) / 2 in place; out = x s."""
    for i in prange(x.shape[0]):
        s = k[3] / (k[3] + e[i])
        e[i] = s
        out[i] = x[i] * s


@compiled(serial_below=SERIAL_BELOW)
def _tanh_backward(x, s, dout, k, dx):
    """dx = dout (s + x s (1 - s) 2 du/dx), s = sigmoid(2u), 2 du/dx = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    for i in prange(x.shape[0]):
        v, si = x[i], s[i]
        du2 = k[7] * k[0] * (k[3] + k[4] * v * v)
        dx[i] = dout[i] * (si + v * si * (k[3] - si) * du2)


@compiled(serial_below=SERIAL_BELOW)
def _erf_forward32(x, k, coef, out, phi):
    last = coef.shape[0] - 1
    for i in prange(x.shape[0]):
        z = -x[i] * k[5]                      # erfc(z), z = -x / sqrt 2
        u = np.abs(z)
        t = k[3] / (k[3] + k[2] * u)
        p = coef[last]
        for j in range(last - 1, -1, -1):     # Horner: P(t)
            p = p * t + coef[j]
        y = t * np.exp(-u * u + p)
        if z < 0:
            y = k[7] - y
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
        dx[i] = dout[i] * (phi[i] + v * k[6] * np.exp(-k[2] * v * v))


def forward(x, approximate="tanh"):
    """out = GELU(x) elementwise; x: (...) -> (...)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out, saved = np.empty_like(flat), np.empty_like(flat)
    k = _constants(flat.dtype)
    if approximate == "tanh":
        _minus_2u(flat, k, saved)
        with np.errstate(over="ignore"):            # x below about -9: exp overflows to inf, s = 0, its limit
            np.exp(saved, out=saved)                # NumPy's vectorised exp; Numba's runs one at a time
        _tanh_finish(flat, k, saved, out)
    elif flat.dtype == np.float32:
        _erf_forward32(flat, k, np.array(ERFC_COEFFS, dtype=np.float32), out, saved)
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
