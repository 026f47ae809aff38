"""The embedding gradient on the CPU: dW[v] = sum of dout over the positions where idx == v.

NumPy's add.at handles one element at a time. Here the rows are sorted by id and each run of
equal ids is summed with add.reduceat: the same sums in a few fast passes.
"""
import numpy as np

from . import numpy_float


def accepts(dout, cache):
    """None for float NumPy gradients."""
    return numpy_float("dout", dout)


def backward(dout, cache, padding_idx=None):
    """dweight: (V, C) from dout: (..., C) and the forward's ids."""
    idx, weight_shape = cache
    dweight = np.zeros(weight_shape, dtype=dout.dtype)
    index, values = idx.reshape(-1), dout.reshape(-1, weight_shape[1])
    if index.size:
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])   # first row of each run
        dweight[sorted_index[starts]] += np.add.reduceat(values[order], starts, axis=0)
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight
