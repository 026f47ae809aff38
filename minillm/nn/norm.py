"""Layer normalisation (Ba, Kiros & Hinton 2016) over the last dimension.

x: (..., C), weight (gamma) and bias (beta): (C,)

    mean = sum_c x_c / C
    var  = sum_c (x_c - mean)^2 / C          (biased, as PyTorch)
    rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd
    out  = xhat * weight + bias
"""
from .. import backend
from . import init
from .checks import check_backend, check_float, check_last_dim
from .module import Module, Parameter


def layernorm_forward(x, weight, bias, eps=1e-5):
    """x: (..., C), weight, bias: (C,) -> out: (..., C). Saves xhat and rstd for the backward pass."""
    xp = backend.get_array_module(x)
    inv_c = 1.0 / x.shape[-1]
    mean = backend.sum_rows(x) * inv_c                     # (..., 1); x.sum(-1) as a BLAS product
    xhat = x - mean                                        # centred x, normalised in place below
    rstd = 1.0 / xp.sqrt(xp.einsum("...c,...c->...", xhat, xhat)[..., None] * inv_c + eps)  # (..., 1)
    xhat *= rstd
    out = xhat * weight
    out += bias
    return out, (xhat, rstd, weight)


def layernorm_backward(dout, cache):
    """Return dx (..., C), dweight (C,), dbias (C,).

    forward: out = xhat * w + b,   xhat = (x - mean) * rstd
      dbias   = sum over positions of dout
      dweight = sum over positions of dout * xhat
      dxhat   = dout * w
      dx      = rstd * (dxhat                         term 1: through xhat directly
                        - mean_c(dxhat)               term 2: through the mean
                        - xhat * mean_c(dxhat * xhat)) term 3: through rstd (the variance)
    """
    xhat, rstd, weight = cache
    xp = backend.get_array_module(xhat)
    C = xhat.shape[-1]
    d2, x2 = dout.reshape(-1, C), xhat.reshape(-1, C)   # (N, C): N = all leading positions
    dbias = backend.sum_columns(d2)                     # d2.sum(axis=0), see backend.sum_columns
    t = d2 * x2                                         # dout * xhat
    dweight = backend.sum_columns(t)
    # the two row means, with dxhat = dout * w written out so that both are matrix-vector products:
    mean_dxhat = (d2 @ weight)[:, None] / C             # mean_c(dxhat)          (N, 1)
    proj = (t @ weight)[:, None] / C                    # mean_c(dxhat * xhat)   (N, 1)
    dx = d2 * weight                                    # dxhat, updated in place: three terms, then * rstd
    dx -= mean_dxhat
    dx -= xp.multiply(x2, proj, out=t)                  # t is free again: xhat * proj
    dx *= rstd.reshape(-1, 1)
    return dx.reshape(dout.shape), dweight, dbias


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
        out, self.cache = layernorm_forward(x, self.weight.data, self.bias.data, self.eps)
        return out

    def backward(self, dout):
        """dout: (..., C) -> dx: (..., C); adds into weight.grad and bias.grad (see layernorm_backward)."""
        dx, dw, db = layernorm_backward(dout, self.pop_cache())
        self.accumulate(self.weight, dw)
        self.accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"
