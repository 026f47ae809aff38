"""Row and column sums as BLAS matrix-vector products with a ones vector.

NumPy sums a short contiguous last axis row by row; one BLAS product over all rows is several
times faster for C = 64 to 512. The sums are the same, added in another order.
"""
import numpy as np

_ones_cache = {}


def ones(n, dtype):
    """A read-only vector of n ones, made once per (n, dtype) and kept (token-by-token generation
    would otherwise make one per call)."""
    key = (n, np.dtype(dtype).str)
    if key not in _ones_cache:
        vector = np.ones(n, dtype=dtype)
        vector.flags.writeable = False
        _ones_cache[key] = vector
    return _ones_cache[key]


def sum_rows(x):
    """x.sum(axis=-1, keepdims=True), x: (..., C) -> (..., 1), as x @ ones(C)."""
    return (x @ ones(x.shape[-1], x.dtype))[..., None]


def sum_columns(x2):
    """x2.sum(axis=0), x2: (N, C) -> (C,), as ones(N) @ x2."""
    return ones(x2.shape[0], x2.dtype) @ x2
