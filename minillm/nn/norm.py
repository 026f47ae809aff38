"""Normalisation over the last dimension: LayerNorm (Ba, Kiros & Hinton 2016) and RMSNorm
(Zhang & Sennrich 2019; Llama).

x: (..., C), weight (gamma) and bias (beta): (C,)

LayerNorm:
    mean = sum_c x_c / C
    var  = sum_c (x_c - mean)^2 / C          (biased, as PyTorch)
    rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd
    out  = xhat * weight + bias

RMSNorm (no mean, no bias: only the scale is normalised):
    rstd = 1 / sqrt(sum_c x_c^2 / C + eps)
    xhat = x * rstd
    out  = xhat * weight
"""
from typing import NamedTuple

from .. import backend
from ..kernels import dispatch
from . import init
from .checks import check_backend, check_float, check_last_dim
from .module import Module, Parameter


class LayerNormCache(NamedTuple):
    """What layer_norm_backward needs from the forward."""
    xhat: object      # (..., C) normalised input
    rstd: object      # (..., 1) 1 / sqrt(var + eps)
    weight: object    # (C,)


def layer_norm_forward(x, weight, bias, eps=1e-5):
    """x: (..., C), weight, bias: (C,) -> out: (..., C), cache (xhat, rstd, weight)."""
    kernel = dispatch.find("layer_norm", x, weight, bias, eps)
    if kernel is not None:
        return kernel.forward(x, weight, bias, eps)
    xp = backend.get_array_module(x)
    mean = x.mean(axis=-1, keepdims=True)                    # (..., C) -> (..., 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)     # (..., 1), biased
    rstd = 1.0 / xp.sqrt(var + eps)                          # (..., 1)
    xhat = (x - mean) * rstd                                 # (..., C)
    out = xhat * weight + bias                               # (..., C)
    return out, LayerNormCache(xhat, rstd, weight)


def layer_norm_backward(dout, cache):
    """Given dL/dout (..., C), return dx (..., C), dweight (C,), dbias (C,).

    forward: out = xhat * w + b,   xhat = (x - mean) * rstd
      dbias   = sum over positions of dout
      dweight = sum over positions of dout * xhat
      dxhat   = dout * w
      dx      = rstd * (dxhat                          term 1: through xhat directly
                        - mean_c(dxhat)                term 2: through the mean
                        - xhat * mean_c(dxhat * xhat)) term 3: through rstd (the variance)
    """
    if not isinstance(cache, LayerNormCache):
        return dispatch.backward("layer_norm", dout, cache)
    xhat, rstd, weight = cache
    positions = tuple(range(dout.ndim - 1))                  # every axis but C
    dbias = dout.sum(axis=positions)                         # out = ... + b
    dweight = (dout * xhat).sum(axis=positions)              # out = xhat * w + ...
    dxhat = dout * weight
    dx = rstd * (dxhat
                 - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dweight, dbias


class LayerNorm(Module):
    """As torch.nn.LayerNorm(normalized_shape, eps): weight = 1, bias = 0 at start."""

    def __init__(self, normalized_shape, eps=1e-5, dtype=None):
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm: only the last dimension can be normalised, got normalized_shape={normalized_shape}")
            normalized_shape = normalized_shape[0]
        self.normalized_shape, self.eps = int(normalized_shape), eps
        self.weight = Parameter(init.ones((self.normalized_shape,), dtype))
        self.bias = Parameter(init.zeros((self.normalized_shape,), dtype))

    def forward(self, x):
        """x: (..., C) -> (x - mean) / sqrt(var + eps) * weight + bias: (..., C)."""
        where = f"LayerNorm({self.normalized_shape})"
        check_float("input", x, where)
        check_backend("input", x, self.weight.data, where)
        check_last_dim("input", x, self.normalized_shape, where)
        out, self.cache = layer_norm_forward(x, self.weight.data, self.bias.data, self.eps)
        return out

    def backward(self, dout):
        """dout: (..., C) -> dx: (..., C); adds into weight.grad and bias.grad (see layer_norm_backward)."""
        dx, dw, db = layer_norm_backward(dout, self.pop_cache())
        self.accumulate(self.weight, dw)
        self.accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


# ============================================================================ RMSNorm
class RMSNormCache(NamedTuple):
    """What rms_norm_backward needs from the forward."""
    xhat: object      # (..., C) x * rstd
    rstd: object      # (..., 1) 1 / sqrt(mean(x^2) + eps)
    weight: object    # (C,)


def rms_norm_forward(x, weight, eps=1e-6):
    """x: (..., C), weight: (C,) -> out = x / sqrt(mean_c(x^2) + eps) * weight: (..., C), cache."""
    xp = backend.get_array_module(x)
    rstd = 1.0 / xp.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)    # (..., 1)
    xhat = x * rstd                                                      # (..., C)
    return xhat * weight, RMSNormCache(xhat, rstd, weight)


def rms_norm_backward(dout, cache):
    """Given dL/dout (..., C), return dx (..., C) and dweight (C,).

    forward: out = xhat * w,   xhat = x * rstd,   rstd = (mean_c(x^2) + eps)^(-1/2)
      dweight = sum over positions of dout * xhat
      dxhat   = dout * w
      dx      = rstd * (dxhat                            term 1: x directly
                        - xhat * mean_c(dxhat * xhat))   term 2: through rstd (d rstd / dx_c = -rstd^3 x_c / C)
    The LayerNorm formula without its mean term: RMSNorm subtracts no mean.
    """
    xhat, rstd, weight = cache
    positions = tuple(range(dout.ndim - 1))
    dweight = (dout * xhat).sum(axis=positions)
    dxhat = dout * weight
    dx = rstd * (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dweight


class RMSNorm(Module):
    """As torch.nn.RMSNorm(dim, eps) (and Hugging Face's LlamaRMSNorm): weight = 1 at start, no bias."""

    def __init__(self, dim, eps=1e-6, dtype=None):
        self.dim, self.eps = int(dim), eps
        self.weight = Parameter(init.ones((self.dim,), dtype))

    def forward(self, x):
        """x: (..., C) -> x / sqrt(mean(x^2) + eps) * weight: (..., C)."""
        where = f"RMSNorm({self.dim})"
        check_float("input", x, where)
        check_backend("input", x, self.weight.data, where)
        check_last_dim("input", x, self.dim, where)
        out, self.cache = rms_norm_forward(x, self.weight.data, self.eps)
        return out

    def backward(self, dout):
        """dout: (..., C) -> dx: (..., C); adds into weight.grad (see rms_norm_backward)."""
        dx, dw = rms_norm_backward(dout, self.pop_cache())
        self.accumulate(self.weight, dw)
        return dx

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"
