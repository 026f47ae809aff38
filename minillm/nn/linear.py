"""Linear (affine) layer and token Embedding.

Letters: N = any number of leading positions (B*T), C = in_features,
O = out_features, V = num_embeddings (vocabulary size).

Linear:     out = x @ W^T + b          x: (..., C), W: (O, C), b: (O,) -> (..., O)
Embedding:  out[n] = W[idx[n]]         idx: (...) ints, W: (V, C)       -> (..., C)
"""
import math
from typing import NamedTuple

from .. import backend
from ..kernels import dispatch
from . import init
from .checks import check_backend, check_float, check_last_dim, check_token_ids
from .module import Module, Parameter


# ============================================================================ Linear
class LinearCache(NamedTuple):
    """What linear_backward needs from the forward."""
    x2: object        # (N, C) the input, leading axes flattened
    weight: object    # (O, C)
    has_bias: bool
    x_shape: tuple    # (..., C) the input's shape, to give dx back in it


def linear_forward(x, weight, bias=None):
    """out = x W^T + b.  x: (..., C), weight: (O, C), bias: (O,) or None -> out: (..., O)."""
    kernel = dispatch.find("linear", x, weight, bias)
    if kernel is not None:
        return kernel.forward(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])                      # (..., C) -> (N, C)
    out = x2 @ weight.T                                   # (N, C) x (C, O) -> (N, O)
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x2, weight, bias is not None, x.shape)


def linear_backward(dout, cache):
    """Given dL/dout (..., O) return dx (..., C), dweight (O, C), dbias (O,) or None.

    forward: out = x W^T + b
      dx = dout W          (N, O) x (O, C) -> (N, C)
      dW = dout^T x        (O, N) x (N, C) -> (O, C)
      db = sum_n dout      (N, O) -> (O,)
    """
    if not isinstance(cache, LinearCache):
        return dispatch.backward("linear", dout, cache)
    x2, weight, has_bias, x_shape = cache
    d2 = dout.reshape(-1, weight.shape[0])               # (..., O) -> (N, O)
    dx = (d2 @ weight).reshape(x_shape)
    dweight = d2.T @ x2
    dbias = d2.sum(axis=0) if has_bias else None
    return dx, dweight, dbias


class Linear(Module):
    """y = x W^T + b, as torch.nn.Linear. weight: (out_features, in_features), bias: (out_features,).

    Initialised like PyTorch: U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform((out_features, in_features), bound, dtype))
        self.bias = Parameter(init.uniform((out_features,), bound, dtype)) if bias else None

    def forward(self, x):
        """x: (..., in_features) -> x W^T + b: (..., out_features)."""
        where = f"Linear(in_features={self.in_features})"
        check_float("input", x, where)
        check_backend("input", x, self.weight.data, where)
        check_last_dim("input", x, self.in_features, where)
        out, self.cache = linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)
        return out

    def backward(self, dout):
        """dout: (..., out_features) -> dx: (..., in_features); adds into weight.grad, bias.grad."""
        dx, dw, db = linear_backward(dout, self.pop_cache())
        self.accumulate(self.weight, dw)
        if self.bias is not None:
            self.accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# ============================================================================ Embedding
class EmbeddingCache(NamedTuple):
    """What embedding_backward needs from the forward."""
    idx: object          # (...) the token ids
    weight_shape: tuple  # (V, C)


def embedding_forward(idx, weight):
    """out = weight[idx].  idx: (...) ints in [0, V), weight: (V, C) -> out: (..., C)."""
    return weight[idx], EmbeddingCache(idx, weight.shape)


def embedding_backward(dout, cache, padding_idx=None):
    """dL/dweight: row v receives the sum of dout at every position where idx == v.

    forward: out[n] = W[idx[n]]  =>  dW[v] = sum_{n: idx[n] = v} dout[n]
    A token seen twice gets both gradients, hence add.at (a scatter-add) rather than assignment.
    """
    kernel = dispatch.find("embedding", dout, cache)
    if kernel is not None:
        return kernel.backward(dout, cache, padding_idx)
    idx, weight_shape = cache
    xp = backend.get_array_module(dout)
    dweight = xp.zeros(weight_shape, dtype=dout.dtype)                  # (V, C)
    xp.add.at(dweight, idx.reshape(-1), dout.reshape(-1, weight_shape[1]))   # (N,) ids, (N, C) rows
    if padding_idx is not None:
        dweight[padding_idx] = 0   # the padding row is never trained (as in PyTorch)
    return dweight


class Embedding(Module):
    """A lookup table, as torch.nn.Embedding. weight: (num_embeddings, embedding_dim) ~ N(0, 1).

    ``padding_idx``: that row starts at zero and receives no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, std=1.0, dtype=None):
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx must lie in [0, {num_embeddings}), got {padding_idx}")
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), std, dtype))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, idx):
        """idx: (...) integer ids -> (..., embedding_dim)."""
        check_token_ids("input", idx, self.num_embeddings, f"Embedding(num_embeddings={self.num_embeddings})")
        idx = backend.to_device_of(idx, self.weight.data)
        out, self.cache = embedding_forward(idx, self.weight.data)
        return out

    def backward(self, dout):
        """dout: (..., embedding_dim). Adds into weight.grad; returns None (ids have no gradient)."""
        self.accumulate(self.weight, embedding_backward(dout, self.pop_cache(), self.padding_idx))
        return None

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
