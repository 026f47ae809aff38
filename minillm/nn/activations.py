"""Elementwise activations (ReLU, GELU) and softmax / log-softmax along one axis.

All shapes are preserved: x: (...) -> out: (...).

ReLU:        out = max(x, 0)
GELU exact:  out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2 = erfc(-x / sqrt 2) / 2
GELU tanh:   out = x/2 * (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (GPT-2; Hendrycks & Gimpel 2016)
softmax:     p_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j   (subtracting m avoids overflow)
log_softmax: x_i - m - log sum_j exp(x_j - m)
"""
import math

import numpy as np

from .. import backend
from .checks import check_float
from .module import Module
from .special import erfc

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ============================================================================ ReLU
def relu_forward(x):
    """out = x [x > 0].  x: (...) -> out: (...); the cache is the bool mask [x > 0]."""
    out = x * (x > 0)
    return out, x > 0


def relu_backward(dout, cache):
    """forward: out = x * [x > 0]   =>   dx = dout * [x > 0]."""
    return dout * cache


# ============================================================================ GELU
def gelu_forward(x, approximate="tanh"):
    """GELU. approximate="tanh" (GPT-2, the default here) or "none" (exact, erf; BERT).

    x: (...) -> out: (...). Both formulas run block by block (see backend.for_blocks) and save
    s for the backward: sigmoid(2u) for "tanh", Phi(x) for "none".
    """
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    out, s = xp.empty_like(x), xp.empty_like(x)
    xf, of, sf = x.reshape(-1), out.reshape(-1), s.reshape(-1)
    formula = _gelu_tanh if approximate == "tanh" else _gelu_erf
    backend.for_blocks(lambda i, j: formula(xf[i:j], of[i:j], sf[i:j]), x.size, x)
    return out, (approximate, x, s)


def _gelu_erf(x, out, s):
    """out = x Phi(x), s = Phi(x) = erfc(-x / sqrt 2) / 2: the same as (1 + erf(x / sqrt 2)) / 2,
    written with erfc to stay accurate for x < 0 (see special.py)."""
    xp = backend.get_array_module(x)
    xp.multiply(x, -_INV_SQRT_2, out=out)                 # out: scratch for -x / sqrt 2
    erfc(out, out=s)
    s *= 0.5
    xp.multiply(x, s, out=out)


def _gelu_tanh(x, out, s):
    """out = x/2 (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); s = sigmoid(2u).

    The two forms are equal because (1 + tanh(u))/2 = 1/(1 + e^(-2u)). The sigmoid form is the one
    computed: NumPy's float32 exp is about twice as fast as its tanh, and the tanh is most of the
    cost of this function. -2u is built as x (a + b x^2) in place (x ** 3 would call pow(), several
    times slower than two multiplies). For x below about -9, e^(-2u) overflows to inf and s becomes
    exactly 0, the right limit, so the overflow warning is silenced.
    """
    xp = backend.get_array_module(x)
    xp.multiply(x, x, out=s)
    s *= -2.0 * 0.044715 * _SQRT_2_OVER_PI
    s -= 2.0 * _SQRT_2_OVER_PI
    s *= x                                                 # s = -2u
    with np.errstate(over="ignore"):
        xp.exp(s, out=s)
    s += 1.0
    xp.divide(1.0, s, out=s)                               # s = sigmoid(2u)
    xp.multiply(x, s, out=out)


def gelu_backward(dout, cache):
    """dx for either GELU form.

    tanh:  out = x s, s = sigmoid(2u)   (= x/2 (1 + tanh u))
           dout/dx = s + x s (1 - s) 2 du/dx,   du/dx = sqrt(2/pi) (1 + 3*0.044715 x^2)
    exact: out = x Phi(x)
           dout/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2/2) / sqrt(2 pi)
    """
    kind, x, s = cache
    xp = backend.get_array_module(x)
    dout = xp.ascontiguousarray(dout)
    dx = xp.empty_like(dout)
    xf, sf, df, of = x.reshape(-1), s.reshape(-1), dout.reshape(-1), dx.reshape(-1)
    formula = _gelu_tanh_grad if kind == "tanh" else _gelu_erf_grad
    backend.for_blocks(lambda i, j: formula(xf[i:j], sf[i:j], df[i:j], of[i:j]), x.size, x)
    return dx


def _gelu_erf_grad(x, s, dout, dx):
    """dx = dout (s + x phi(x)) with s = Phi(x), written into dx (see gelu_backward)."""
    xp = backend.get_array_module(x)
    xp.multiply(x, x, out=dx)
    dx *= -0.5
    xp.exp(dx, out=dx)
    dx *= _INV_SQRT_2PI                                    # phi(x)
    dx *= x
    dx += s
    dx *= dout


def _gelu_tanh_grad(x, s, dout, dx):
    """dx = dout (s + x s (1 - s) 2 du/dx), written into dx (see gelu_backward)."""
    xp = backend.get_array_module(x)
    du2 = x * x
    du2 *= 2.0 * 3 * 0.044715 * _SQRT_2_OVER_PI
    du2 += 2.0 * _SQRT_2_OVER_PI                           # 2 du/dx
    xp.subtract(1.0, s, out=dx)
    dx *= s                                                # s (1 - s), the sigmoid's slope
    dx *= x
    dx *= du2
    dx += s
    dx *= dout


# ============================================================================ softmax
def softmax_forward(x, axis=-1):
    """p_i = exp(x_i - m) / sum_j exp(x_j - m) along ``axis``, m = max_j x_j.  x: (...) -> p: (...)."""
    xp = backend.get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p, (p, axis)


def softmax_backward(dout, cache):
    """forward: p = softmax(x)  =>  dx_i = p_i (dout_i - sum_j dout_j p_j)   (Jacobian diag(p) - p p^T)."""
    p, axis = cache
    return p * (dout - (dout * p).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    """out_i = x_i - m - log sum_j exp(x_j - m) along ``axis``, m = max_j x_j.  x: (...) -> out: (...)."""
    xp = backend.get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)
    out = z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def log_softmax_backward(dout, cache):
    """forward: out = x - logsumexp(x)  =>  dx_i = dout_i - softmax(x)_i * sum_j dout_j."""
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
