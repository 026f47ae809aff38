"""Cross-entropy from logits, the loss of every language model here.

Letters: N positions (B*T), V vocabulary/classes.
logits z: (N, V) or (B, T, V); targets y: (N,) or (B, T) integer class ids.

    log p_c  = z_c - logsumexp(z)            (stable: logsumexp subtracts max z first)
    loss_n   = -(1 - eps) log p_{y_n} - eps/V * sum_c log p_c      (eps = label_smoothing)
    loss     = mean of loss_n over positions whose target != ignore_index

With eps = 0 this is the negative log-likelihood -log p(y_n), so minimising it is
maximum likelihood; exp(loss) is the perplexity.
"""
from typing import NamedTuple

import numpy as np

from .. import backend
from ..kernels import dispatch
from .activations import log_softmax_forward
from .checks import check_float
from .module import Module


class CrossEntropyCache(NamedTuple):
    """What cross_entropy_backward needs from the forward."""
    logp: object          # (N, V) log-softmax of the logits
    targets: object       # (N,) target ids (ignored ones replaced by 0)
    valid: object         # (N,) bool, False where the target is ignore_index
    count: int            # number of valid targets (at least 1)
    label_smoothing: float
    logits_shape: tuple


def cross_entropy_forward(logits, targets, ignore_index=-100, label_smoothing=0.0):
    """logits: (..., V), targets: (...) ints -> scalar loss (0-d array of logits' dtype), cache."""
    kernel = dispatch.find("cross_entropy", logits, targets, ignore_index, label_smoothing)
    if kernel is not None:
        return kernel.forward(logits, targets, ignore_index, label_smoothing)
    xp = backend.get_array_module(logits)
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                                  # (..., V) -> (N, V)
    y = targets.reshape(-1)                                    # (...) -> (N,)
    valid = y != ignore_index                                  # (N,)
    y_safe = xp.where(valid, y, 0)
    logp, _ = log_softmax_forward(z)                           # (N, V)
    nll = -logp[xp.arange(z.shape[0]), y_safe]                 # (N,)
    if label_smoothing > 0:
        nll = (1.0 - label_smoothing) * nll - (label_smoothing / V) * logp.sum(axis=1)
    count = max(int(valid.sum()), 1)   # all targets ignored: loss 0 and no gradient (torch gives NaN)
    # count as logits' dtype: NumPy 1.x turns float32 scalar / Python int into float64
    loss = (nll * valid).sum() / z.dtype.type(count)
    return loss, CrossEntropyCache(logp, y_safe, valid, count, label_smoothing, logits.shape)


def cross_entropy_backward(cache, dloss=1.0):
    """dlogits = dloss * (softmax(z) - q) / count on valid rows, 0 on ignored ones.

    q is the target distribution: (1 - eps) one_hot(y) + eps / V.
    """
    if not isinstance(cache, CrossEntropyCache):
        return dispatch.backward("cross_entropy", dloss, cache)
    logp, y, valid, count, eps, shape = cache
    xp = backend.get_array_module(logp)
    V = logp.shape[1]
    dz = xp.exp(logp)                                           # softmax(z), (N, V)
    if eps > 0:
        dz -= eps / V
    dz[xp.arange(dz.shape[0]), y] -= 1.0 - eps
    dz *= (valid * (dloss / count))[:, None].astype(dz.dtype)
    return dz.reshape(shape)


class CrossEntropyLoss(Module):
    """As torch.nn.CrossEntropyLoss(ignore_index, label_smoothing) with mean reduction.

    forward(logits (N, V) or (B, T, V), targets (N,) or (B, T)) -> loss; backward() -> dlogits.
    """

    def __init__(self, ignore_index=-100, label_smoothing=0.0):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must lie in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits, targets):
        """logits: (N, V) or (B, T, V), targets: (N,) or (B, T) ids -> the mean, over targets that are
        not ignore_index, of -log softmax(logits)[target] (with label_smoothing > 0, the file docstring's loss_n)."""
        where = "CrossEntropyLoss"
        check_float("logits", logits, where)
        if not np.issubdtype(np.dtype(targets.dtype), np.integer):
            raise TypeError(f"{where}: targets must be integer class ids, got dtype {targets.dtype}")
        if tuple(targets.shape) != tuple(logits.shape[:-1]):
            raise ValueError(f"{where}: targets shape {tuple(targets.shape)} must equal logits shape without "
                             f"the class dimension {tuple(logits.shape[:-1])} (logits {tuple(logits.shape)})")
        targets = backend.to_device_of(targets, logits)
        V = logits.shape[-1]
        bad = (targets != self.ignore_index) & ((targets < 0) | (targets >= V))
        if bool(bad.any()):
            raise ValueError(f"{where}: targets must lie in [0, {V}) or equal ignore_index={self.ignore_index}, "
                             f"got values in [{int(targets.min())}, {int(targets.max())}]")
        loss, self.cache = cross_entropy_forward(logits, targets, self.ignore_index, self.label_smoothing)
        return loss

    def backward(self, dloss=1.0):
        """Returns dL/dlogits, same shape as the logits."""
        return cross_entropy_backward(self.pop_cache(), dloss)
