"""Input checks shared by the layers' public entries.

Each raises ValueError/TypeError naming the argument, what was expected and
what arrived, e.g. ``Linear(in_features=64) got input with last dimension 32``.
Checks run once at the entry of a Module's forward, never inside the math.
"""
import numpy as np

from .. import backend


def check_float(name, x, where):
    """x must be a floating-point array."""
    dtype = getattr(x, "dtype", None)
    if getattr(dtype, "kind", None) != "f":      # dtype.kind: cheaper than np.issubdtype, runs every call
        raise TypeError(f"{where}: {name} must be a floating-point array, got {_describe(x)}")


def check_ndim(name, x, ndims, where):
    """x.ndim must be one of ``ndims``; ``ndims`` is a tuple such as (2, 3)."""
    if getattr(x, "ndim", None) not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{where}: {name} must be {want}, got shape {getattr(x, 'shape', None)}")


def check_last_dim(name, x, size, where):
    """x.shape[-1] must equal ``size`` (the layer's feature size)."""
    if x.shape[-1] != size:
        raise ValueError(f"{where} got {name} with last dimension {x.shape[-1]} (shape {tuple(x.shape)}), expected {size}")


def check_positions(name, x, axis, where):
    """x.shape[axis] >= 1: attention over no positions is a softmax of an empty row, undefined."""
    if x.shape[axis] < 1:
        raise ValueError(f"{where}: {name} must hold at least one position (axis {axis}), got shape {tuple(x.shape)}")


def check_token_ids(name, idx, num, where):
    """idx must be an integer array with every value in [0, num)."""
    dtype = getattr(idx, "dtype", None)
    if getattr(dtype, "kind", None) not in ("i", "u"):
        raise TypeError(f"{where}: {name} must be an integer array of token ids, got {_describe(idx)}")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= num:
            raise ValueError(f"{where}: {name} must lie in [0, {num}), got values in [{lo}, {hi}]")


def check_sequences(name, idx, where):
    """idx must be a batch of token sequences, shape (B, T) with B >= 1 and T >= 1."""
    shape = tuple(getattr(idx, "shape", ()))
    if len(shape) != 2 or 0 in shape:
        hint = " (one sequence: pass idx[None], shape (1, T))" if len(shape) == 1 and shape[0] else ""
        raise ValueError(f"{where}: {name} must have shape (B, T) with B, T >= 1, got {shape}{hint}")


def check_same_dtype(where, **arrays):
    """Every array given (None is skipped) must have the same dtype, e.g. q, k, v of attention."""
    dtypes = {k: np.dtype(v.dtype) for k, v in arrays.items() if v is not None}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{k}={d}" for k, d in dtypes.items())
        raise TypeError(f"{where}: arrays must share one dtype, got {listing}")


def check_backend(name, x, param, where):
    """x must live on the same device as the module's parameters."""
    if backend.get_array_module(x) is not backend.get_array_module(param):
        raise TypeError(f"{where}: {name} is a {type(x).__module__.split('.')[0]} array but the "
                        f"parameters are on {backend.get_array_module(param).__name__}; "
                        "use backend.to_device(x) or module.to(...)")


def _describe(x):
    if hasattr(x, "dtype"):
        return f"{type(x).__name__} of dtype {x.dtype} and shape {tuple(x.shape)}"
    return f"{type(x).__name__}"
