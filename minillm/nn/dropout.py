"""Dropout (Srivastava et al. 2014), "inverted" as in PyTorch.

Training: each element is kept with probability 1 - p and scaled by 1/(1 - p),
so the expected output equals the input and evaluation needs no rescaling.

    mask ~ Bernoulli(1 - p)          same shape as x
    out  = x * mask / (1 - p)
"""
from typing import NamedTuple

from .. import backend
from .checks import check_float
from .module import Module


class DropoutCache(NamedTuple):
    """The keep-mask and the scale 1 / (1 - p) the forward used."""
    mask: object
    scale: float


def dropout_forward(x, p, mask):
    """x: (...), mask: (...) bool (True = keep) -> out: (...). The mask is an argument so tests can fix it."""
    scale = 1.0 / (1.0 - p)
    return x * mask * scale, DropoutCache(mask, scale)


def dropout_backward(dout, cache):
    """forward: out = x * mask / (1 - p)   =>   dx = dout * mask / (1 - p)."""
    mask, scale = cache
    return dout * mask * scale


def dropout_mask(shape, p, dtype=None):
    """A fresh keep-mask: True with probability 1 - p (drawn on the current backend)."""
    return backend.rand(shape, dtype) >= p


class Dropout(Module):
    """As torch.nn.Dropout(p): active only in training mode; identity in eval mode or when p == 0.

    ``fixed_mask``: when set, used instead of a random draw (gradient checks).
    """

    def __init__(self, p=0.5):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = p
        self.fixed_mask = None

    def active(self):
        """True when the forward drops anything: training mode and p > 0."""
        return self.training and self.p > 0

    def forward(self, x):
        """x: (...) -> x * mask / (1 - p): (...) in training with p > 0, else x unchanged."""
        check_float("input", x, "Dropout")
        if not self.active():
            self.cache = "identity"
            return x
        mask = self.fixed_mask if self.fixed_mask is not None else dropout_mask(x.shape, self.p)
        out, self.cache = dropout_forward(x, self.p, mask)
        return out

    def backward(self, dout):
        """dout: (...) -> dx = dout * mask / (1 - p): (...); dout itself when the forward was the identity."""
        cache = self.pop_cache()
        return dout if cache == "identity" else dropout_backward(dout, cache)

    def extra_repr(self):
        return f"p={self.p}"
