"""Initial values for parameters.

Random draws come from one NumPy generator (``backend.cpu_rng``, seeded by
``minillm.manual_seed``) and are then copied to the current backend, so a model
built with the same seed has the same weights on the CPU and on the GPU.
"""
import numpy as np

from .. import backend


def _place(a, dtype):
    return backend.to_device(a.astype(dtype or backend.DEFAULT_DTYPE))


def uniform(shape, bound, dtype=None):
    """U(-bound, bound) of ``shape``: PyTorch's default for Linear, LSTM (bound = 1/sqrt(fan_in))."""
    return _place(backend.cpu_rng().uniform(-bound, bound, size=shape), dtype)


def normal(shape, std, dtype=None):
    """N(0, std^2) of ``shape``: GPT-2 / BERT initialisation (std 0.02)."""
    return _place(backend.cpu_rng().normal(0.0, std, size=shape), dtype)


def zeros(shape, dtype=None):
    """An array of zeros of ``shape`` (biases)."""
    return _place(np.zeros(shape), dtype)


def ones(shape, dtype=None):
    """An array of ones of ``shape`` (LayerNorm's weight)."""
    return _place(np.ones(shape), dtype)
