"""LoRA: low-rank adaptation of a frozen Linear (Hu et al. 2021).

Letters: N positions, I in_features, O out_features, r the rank (r << I, O).

    y = x W^T + b + s (x A^T) B^T         W: (O, I) frozen, A: (r, I), B: (O, r) trained, s = alpha / r

Only A and B are trained: r (I + O) numbers instead of I O. B starts at zero, so training starts
from the model as it was; A starts Gaussian, N(0, 1/r^2), so B receives a gradient at the first
step. Merging folds the update into the weight, W' = W + s B A: the merged layer is an ordinary
Linear again, as fast as before, and unmerging subtracts it back.
"""
from typing import NamedTuple

from . import init
from .linear import Linear, linear_forward
from .module import Module, Parameter


class LoRACache(NamedTuple):
    """What LoRALinear.backward needs: the input (N, I), x A^T (N, r), and the input's shape."""
    x2: object
    xa: object
    x_shape: tuple


class LoRALinear(Module):
    """A frozen ``base`` Linear plus a trained low-rank update: y = base(x) + (alpha / r) x A^T B^T.

    lora_A: (r, in_features), lora_B: (out_features, r), the names PEFT uses. The base Linear's
    weight and bias get no gradient: backward never forms dW (an O x I product per step).
    """

    def __init__(self, base, rank, alpha=None):
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear wraps a Linear, got {type(base).__name__}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(base.in_features,
                                                                                        base.out_features):
            raise ValueError(f"LoRALinear: rank must be an integer in [1, {min(base.in_features, base.out_features)}], "
                             f"got {rank!r}")
        self.base, self.rank = base, rank
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        dtype = base.weight.data.dtype
        self.lora_A = Parameter(init.normal((rank, base.in_features), 1.0 / rank, dtype))
        self.lora_B = Parameter(init.zeros((base.out_features, rank), dtype))
        self.merged = False

    @property
    def weight(self):
        """The base layer's (frozen) weight, so code that reads ``layer.weight`` keeps working."""
        return self.base.weight

    def forward(self, x):
        """x: (..., I) -> x W^T + b + s (x A^T) B^T: (..., O) (just the merged weight when merged)."""
        b = None if self.base.bias is None else self.base.bias.data
        y, _ = linear_forward(x, self.base.weight.data, b)
        if self.merged:
            self.cache = "merged"
            return y
        x2 = x.reshape(-1, x.shape[-1])                  # (N, I)
        xa = x2 @ self.lora_A.data.T                     # (N, I) x (I, r) -> (N, r)
        delta = (xa @ self.lora_B.data.T) * self.scaling  # (N, r) x (r, O) -> (N, O)
        self.cache = LoRACache(x2, xa, x.shape)
        return y + delta.reshape(y.shape)

    def backward(self, dy):
        """dy: (..., O) -> dx: (..., I); adds into lora_A.grad and lora_B.grad only.

        forward: y = x W^T + s (x A^T) B^T,  xa = x A^T
          dB  = s dy^T xa              (O, N) x (N, r) -> (O, r)
          dxa = s dy B                 (N, O) x (O, r) -> (N, r)
          dA  = dxa^T x                (r, N) x (N, I) -> (r, I)
          dx  = dy W + dxa A           the frozen path and the low-rank path
        """
        cache = self.pop_cache()
        if cache == "merged":
            raise RuntimeError("LoRALinear: the update is merged into the weight; unmerge() before training")
        x2, xa, x_shape = cache
        d2 = dy.reshape(-1, dy.shape[-1])                # (N, O)
        dxa = (d2 @ self.lora_B.data) * self.scaling     # (N, r)
        self.accumulate(self.lora_B, (d2.T @ xa) * self.scaling)
        self.accumulate(self.lora_A, dxa.T @ x2)
        dx = d2 @ self.base.weight.data + dxa @ self.lora_A.data
        return dx.reshape(*x_shape[:-1], x2.shape[1])

    def delta_weight(self):
        """The update as a full matrix, s B A: (O, I)."""
        return (self.lora_B.data @ self.lora_A.data) * self.scaling

    def merge(self):
        """W <- W + s B A: afterwards the layer costs what the base Linear costs."""
        if not self.merged:
            self.base.weight.data += self.delta_weight()
            self.merged = True

    def unmerge(self):
        """W <- W - s B A: the frozen weight as it was (up to rounding), the update separate again."""
        if self.merged:
            self.base.weight.data -= self.delta_weight()
            self.merged = False

    def extra_repr(self):
        return (f"in_features={self.base.in_features}, out_features={self.base.out_features}, rank={self.rank}, "
                f"alpha={self.alpha:g}, merged={self.merged}")
