"""Elementwise activations (ReLU, GELU, SiLU) and softmax / log-softmax along one axis.

All shapes are preserved: x: (...) -> out: (...).

ReLU:        out = max(x, 0)
GELU exact:  out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2 = erfc(-x / sqrt 2) / 2
GELU tanh:   out = x/2 * (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (GPT-2; Hendrycks & Gimpel 2016)
SiLU:        out = x * sigmoid(x)   (also "swish"; the gate of Llama's SwiGLU)
softmax:     p_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j   (subtracting m avoids overflow)
log_softmax: x_i - m - log sum_j exp(x_j - m)
"""
import math
from typing import NamedTuple

from .. import backend
from ..kernels import dispatch
from .checks import check_float
from .module import Module
from .special import erfc

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_CUBIC = 0.044715


# ============================================================================ ReLU
def relu_forward(x):
    """out = x [x > 0].  x: (...) -> out: (...); the cache is the bool mask [x > 0]."""
    positive = x > 0
    return x * positive, positive


def relu_backward(dout, cache):
    """forward: out = x * [x > 0]   =>   dx = dout * [x > 0]."""
    return dout * cache


# ============================================================================ sigmoid
def sigmoid(z):
    """sigmoid(z) = 1 / (1 + e^-z), computed as (1 + tanh(z/2)) / 2: the same function, and e^-z
    cannot overflow. z: (...) -> (...)."""
    xp = backend.get_array_module(z)
    return 0.5 * (1.0 + xp.tanh(0.5 * z))


# ============================================================================ GELU
class GELUCache(NamedTuple):
    """What gelu_backward needs: the form, the input, and tanh(u) ("tanh") or Phi(x) ("none")."""
    approximate: str
    x: object
    saved: object


def gelu_forward(x, approximate="tanh"):
    """GELU. approximate="tanh" (GPT-2, the default here) or "none" (exact, erfc; BERT).

    x: (...) -> out: (...)
      tanh:  u = sqrt(2/pi) (x + 0.044715 x^3),   out = x/2 (1 + tanh u)
      none:  Phi(x) = erfc(-x / sqrt 2) / 2,       out = x Phi(x)
    """
    kernel = dispatch.find("gelu", x, approximate)
    if kernel is not None:
        return kernel.forward(x, approximate)
    xp = backend.get_array_module(x)
    if approximate == "tanh":
        u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3)
        tanh_u = xp.tanh(u)
        return 0.5 * x * (1.0 + tanh_u), GELUCache("tanh", x, tanh_u)
    phi_cdf = 0.5 * erfc(-x * INV_SQRT_2)                 # Phi(x), accurate for x < 0 too (special.py)
    return x * phi_cdf, GELUCache("none", x, phi_cdf)


def gelu_backward(dout, cache):
    """dx for either GELU form.

    tanh:  out = x/2 (1 + tanh u)
           dout/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) du/dx,   du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    exact: out = x Phi(x)
           dout/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2/2) / sqrt(2 pi)
    """
    if not isinstance(cache, GELUCache):
        return dispatch.backward("gelu", dout, cache)
    xp = backend.get_array_module(dout)
    approximate, x, saved = cache
    if approximate == "tanh":
        tanh_u = saved
        du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x ** 2)
        return dout * (0.5 * (1.0 + tanh_u) + 0.5 * x * (1.0 - tanh_u ** 2) * du_dx)
    phi_cdf = saved
    phi_pdf = INV_SQRT_2PI * xp.exp(-0.5 * x ** 2)
    return dout * (phi_cdf + x * phi_pdf)


# ============================================================================ SiLU
def silu_forward(x):
    """out = x * sigmoid(x).  x: (...) -> out: (...); the cache is (x, sigmoid(x))."""
    s = sigmoid(x)
    return x * s, (x, s)


def silu_backward(dout, cache):
    """forward: out = x s,  s = sigmoid(x),  s' = s (1 - s)
    =>  dx = dout * (s + x s (1 - s))   (product rule: the x branch and the s branch)."""
    x, s = cache
    return dout * (s + x * s * (1.0 - s))


# ============================================================================ softmax
class SoftmaxCache(NamedTuple):
    """The forward's output (softmax p, or log-softmax) and the axis it ran along."""
    out: object
    axis: int


def softmax_forward(x, axis=-1):
    """p_i = exp(x_i - m) / sum_j exp(x_j - m) along ``axis``, m = max_j x_j.  x: (...) -> p: (...)."""
    kernel = dispatch.find("softmax", x, axis)
    if kernel is not None:
        return kernel.forward(x)
    xp = backend.get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p, SoftmaxCache(p, axis)


def softmax_backward(dout, cache):
    """forward: p = softmax(x)  =>  dx_i = p_i (dout_i - sum_j dout_j p_j)   (Jacobian diag(p) - p p^T)."""
    if not isinstance(cache, SoftmaxCache):
        return dispatch.backward("softmax", dout, cache)
    p, axis = cache
    return p * (dout - (dout * p).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    """out_i = x_i - m - log sum_j exp(x_j - m) along ``axis``, m = max_j x_j.  x: (...) -> out: (...)."""
    kernel = dispatch.find("log_softmax", x, axis)
    if kernel is not None:
        return kernel.forward(x, log=True)
    xp = backend.get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)
    out = z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
    return out, SoftmaxCache(out, axis)


def log_softmax_backward(dout, cache):
    """forward: out = x - logsumexp(x)  =>  dx_i = dout_i - softmax(x)_i * sum_j dout_j."""
    if not isinstance(cache, SoftmaxCache):
        return dispatch.backward("log_softmax", dout, cache)
    out, axis = cache
    xp = backend.get_array_module(out)
    return dout - xp.exp(out) * dout.sum(axis=axis, keepdims=True)


# ============================================================================ Modules
class ReLU(Module):
    """out = max(x, 0), as torch.nn.ReLU."""

    def forward(self, x):
        """x: (...) -> max(x, 0): (...)."""
        check_float("input", x, "ReLU")
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout):
        """dout: (...) -> dx = dout [x > 0]: (...)."""
        return relu_backward(dout, self.pop_cache())


class GELU(Module):
    """GELU, as torch.nn.GELU(approximate=...): "tanh" (GPT-2) or "none" (exact erf form, BERT)."""

    def __init__(self, approximate="tanh"):
        if approximate not in ("tanh", "none"):
            raise ValueError(f'GELU: approximate must be "tanh" or "none", got {approximate!r}')
        self.approximate = approximate

    def forward(self, x):
        """x: (...) -> GELU(x): (...)."""
        check_float("input", x, "GELU")
        out, self.cache = gelu_forward(x, self.approximate)
        return out

    def backward(self, dout):
        """dout: (...) -> dx: (...), see gelu_backward."""
        return gelu_backward(dout, self.pop_cache())

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """out = x * sigmoid(x), as torch.nn.SiLU."""

    def forward(self, x):
        """x: (...) -> x * sigmoid(x): (...)."""
        check_float("input", x, "SiLU")
        out, self.cache = silu_forward(x)
        return out

    def backward(self, dout):
        """dout: (...) -> dx: (...), see silu_backward."""
        return silu_backward(dout, self.pop_cache())


class Softmax(Module):
    """softmax along ``dim``, as torch.nn.Softmax(dim)."""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        """x: (...) -> softmax(x) along dim: (...)."""
        check_float("input", x, "Softmax")
        out, self.cache = softmax_forward(x, self.dim)
        return out

    def backward(self, dout):
        """dout: (...) -> dx: (...), see softmax_backward."""
        return softmax_backward(dout, self.pop_cache())


class LogSoftmax(Module):
    """log-softmax along ``dim``, as torch.nn.LogSoftmax(dim)."""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        """x: (...) -> log_softmax(x) along dim: (...)."""
        check_float("input", x, "LogSoftmax")
        out, self.cache = log_softmax_forward(x, self.dim)
        return out

    def backward(self, dout):
        """dout: (...) -> dx: (...), see log_softmax_backward."""
        return log_softmax_backward(dout, self.pop_cache())
