"""Rotary positional embedding, RoPE (Su et al. 2021; Llama, Qwen, Mistral).

Instead of adding a position vector to x, rotate every pair of coordinates of each query and key
by an angle proportional to its position. For pair i of a head of size D:

    inv_freq_i = theta^(-2i / D)            i = 0 .. D/2 - 1   (theta = 10,000 in Llama 2, 500,000 in Llama 3)
    angle[t, i] = position_t * inv_freq_i
    (a, b) -> (a cos - b sin,  a sin + b cos)

A rotation keeps lengths, and q_m . k_n after rotating by m and n angles depends only on m - n:
attention sees relative positions. Which coordinates form pair i is a convention:

    half-split   (x_i, x_{i + D/2})    Hugging Face's default ("rotate_half"), interleaved=False
    interleaved  (x_{2i}, x_{2i+1})    the RoPE paper and Meta's original Llama code, interleaved=True

q: (B, H, T, D), k: (B, H_kv, T, D), positions: (T,) integers -> the same shapes.
"""
from typing import NamedTuple

import numpy as np

from .. import backend


class RotaryCache(NamedTuple):
    """The angles' cosines and sines, (T, D/2) each, and the pairing convention."""
    cos: object
    sin: object
    interleaved: bool


def rotary_angles(positions, head_dim, theta, like):
    """cos and sin of angle[t, i] = positions[t] * theta^(-2i / D), each (T, D/2), with the dtype and
    device of ``like``. Built in float64 with NumPy (positions reach 10^5 and more), then cast."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)    # (D/2,)
    angle = np.asarray(backend.to_numpy(positions), dtype=np.float64)[:, None] * inv_freq[None, :]
    return (backend.to_device_of(np.cos(angle).astype(like.dtype), like),
            backend.to_device_of(np.sin(angle).astype(like.dtype), like))


def _pairs(x, interleaved):
    """The two coordinates of every pair: (a, b), each (..., D/2)."""
    if interleaved:
        return x[..., 0::2], x[..., 1::2]
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


def _join(a, b, interleaved, xp):
    """The inverse of _pairs: (..., D/2) twice -> (..., D)."""
    if interleaved:
        return xp.stack([a, b], axis=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])
    return xp.concatenate([a, b], axis=-1)


def rotate(x, cache, inverse=False):
    """Rotate every pair of x (..., T, D) by its angle (by minus it when ``inverse``)."""
    xp = backend.get_array_module(x)
    cos, sin, interleaved = cache
    sin = -sin if inverse else sin
    a, b = _pairs(x, interleaved)
    return _join(a * cos - b * sin, a * sin + b * cos, interleaved, xp)


def apply_rotary(q, k, positions, theta=10000.0, interleaved=False):
    """q: (B, H, T, D), k: (B, H_kv, T, D), positions: (T,) -> rotated q and k, and the cache."""
    D = q.shape[-1]
    if D % 2 or k.shape[-1] != D:
        raise ValueError(f"apply_rotary: q and k need the same even head size, got {q.shape[-1]} and {k.shape[-1]}")
    if len(positions) != q.shape[-2] or k.shape[-2] != q.shape[-2]:
        raise ValueError(f"apply_rotary: positions ({len(positions)}) must match the T of q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    cos, sin = rotary_angles(positions, D, theta, q)
    cache = RotaryCache(cos, sin, interleaved)
    return rotate(q, cache), rotate(k, cache), cache


def rotary_backward(dq, dk, cache):
    """forward: out = R(angle) x, a rotation  =>  dx = R(angle)^T dout = R(-angle) dout, for q and k alike."""
    return rotate(dq, cache, inverse=True), rotate(dk, cache, inverse=True)
