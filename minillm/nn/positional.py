"""Positional encodings: attention itself ignores order, so position must be added to x.

x: (B, T, C); a table P: (max_len, C); out = x + P[:T] (broadcast over B).

Sinusoidal (Vaswani et al. 2017, fixed):
    P[t, 2i]   = sin(t / 10000^(2i/C))
    P[t, 2i+1] = cos(t / 10000^(2i/C))
Learned (GPT-2, BERT): P is a trained parameter ``weight``.
"""
from typing import NamedTuple

import numpy as np

from .. import backend
from . import init
from .checks import check_float
from .module import Module, Parameter


def sinusoidal_table(max_len, dim, dtype=None):
    """The (max_len, dim) sinusoidal table, built in float64 on the CPU then cast."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]                # (T, 1)
    freq = np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)      # (ceil(C/2),)
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq[: dim // 2])
    return backend.to_device(table.astype(dtype or backend.DEFAULT_DTYPE))


class PositionalCache(NamedTuple):
    """Which rows of the table the forward added: offset .. offset + length - 1."""
    offset: int
    length: int


def positional_forward(x, table, offset=0):
    """out = x + table[offset:offset+T].  x: (B, T, C), table: (max_len, C) -> (B, T, C).

    ``offset`` > 0 when generating with a KV cache: the new tokens sit after the cached ones.
    """
    T = x.shape[1]
    return x + table[offset:offset + T], PositionalCache(offset, T)


def positional_backward(dout):
    """forward: out = x + P[:T]   =>   dx = dout,   dP[:T] = sum over the batch of dout."""
    return dout, dout.sum(axis=0)


def _check(x, max_len, dim, where, offset=0):
    check_float("input", x, where)
    if x.ndim != 3 or x.shape[2] != dim:
        raise ValueError(f"{where}: input must have shape (B, T, {dim}), got {tuple(x.shape)}")
    if offset + x.shape[1] > max_len:
        raise ValueError(f"{where}: sequence length {offset + x.shape[1]} exceeds max_len {max_len}")


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table; has no parameters."""

    def __init__(self, dim, max_len=5000, dtype=None):
        self.dim, self.max_len = dim, max_len
        self.table = sinusoidal_table(max_len, dim, dtype)

    def _to_hook(self, backend_name, dtype):
        table = self.table if backend_name is None else backend.to_device(self.table, backend_name)
        self.table = table if dtype is None else table.astype(dtype)

    def forward(self, x):
        """x: (B, T, C) -> x + table[:T]: (B, T, C)."""
        _check(x, self.max_len, self.dim, f"SinusoidalPositionalEncoding(dim={self.dim})")
        out, self.cache = positional_forward(x, self.table.astype(x.dtype, copy=False))
        return out

    def backward(self, dout):
        """dout: (B, T, C) -> dx = dout (the table is fixed, it has no gradient)."""
        self.pop_cache()
        return positional_backward(dout)[0]


class LearnedPositionalEncoding(Module):
    """Adds a trained table ``weight``: (max_len, dim), initialised N(0, 0.02^2)."""

    def __init__(self, dim, max_len, std=0.02, dtype=None):
        self.dim, self.max_len = dim, max_len
        self.weight = Parameter(init.normal((max_len, dim), std, dtype))

    def forward(self, x, offset=0):
        """x: (B, T, C) -> x + weight[offset:offset + T]: (B, T, C) (offset: positions already in a KV cache)."""
        _check(x, self.max_len, self.dim, f"LearnedPositionalEncoding(dim={self.dim})", offset)
        out, self.cache = positional_forward(x, self.weight.data, offset)
        return out

    def backward(self, dout):
        """dout: (B, T, C) -> dx = dout; weight.grad[offset:offset + T] += dout summed over the batch."""
        offset, T = self.pop_cache()
        dx, dtable = positional_backward(dout)
        self.weight.grad[offset:offset + T] += dtable
        return dx
