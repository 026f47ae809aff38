"""Optimizers, gradient clipping and the learning-rate schedule.

For a parameter p with gradient g at step t (lr = learning rate, wd = weight decay):

SGD (momentum mu):       g += wd p;  b = mu b + g (b = g at t = 1);  p -= lr b
Adam (Kingma & Ba 2015): g += wd p  (L2 penalty, coupled as in torch.optim.Adam)
                         m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
                         p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
AdamW (Loshchilov & Hutter 2019): p -= lr wd p  (decay decoupled from the gradient), then Adam with wd = 0

Parameter groups: pass a list of {"params": [...], "weight_decay": x} to give groups their own
options; ``param_groups(model, wd)`` puts biases, LayerNorm and embedding tables in a no-decay group.
"""
import math

import numpy as np

from .. import backend
from ..kernels import dispatch
from ..nn.linear import Embedding
from ..nn.norm import LayerNorm
from ..nn.positional import LearnedPositionalEncoding


def param_groups(model, weight_decay):
    """[{decayed weights}, {biases, LayerNorm, embeddings: weight_decay 0}] for AdamW (as GPT-2/BERT)."""
    no_decay_ids = set()
    for _, module in model.named_modules():
        if isinstance(module, (LayerNorm, Embedding, LearnedPositionalEncoding)):
            no_decay_ids.update(id(p) for _, p in module.named_parameters())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if id(p) in no_decay_ids or name.endswith("bias") or p.data.ndim < 2 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Optimizer:
    """Holds parameter groups and per-parameter state; ``step()`` updates every parameter in place."""

    def __init__(self, params, defaults):
        params = list(params)
        if params and isinstance(params[0], dict):
            self.param_groups = [{**defaults, **g, "params": list(g["params"])} for g in params]
        else:
            self.param_groups = [{**defaults, "params": params}]
        self.state = {}    # id(param) -> dict of arrays
        self.step_count = 0

    def set_lr(self, lr):
        """Set the learning rate of every parameter group (the schedule calls this before each step)."""
        for g in self.param_groups:
            g["lr"] = lr

    def step(self):
        """Update every parameter once from its .grad (call after the backward pass)."""
        self.step_count += 1
        for group in self.param_groups:
            for p in group["params"]:
                self.update(p, group, self.state.setdefault(id(p), {}))

    def update(self, p, group, state):
        """Update one parameter p in place from p.grad with its group's settings and its own state dict."""
        raise NotImplementedError

    # checkpoints: the state of parameter i of the flat parameter list, as plain arrays
    def state_arrays(self):
        """The state as plain arrays named "i.name" (i: the parameter's index over all groups), for .npz files."""
        flat = [p for g in self.param_groups for p in g["params"]]
        return {f"{i}.{k}": backend.to_numpy(v) for i, p in enumerate(flat) for k, v in self.state.get(id(p), {}).items()}

    def load_state_arrays(self, arrays, step_count):
        """Restore the state saved by state_arrays (same parameter order) and the step count."""
        flat = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for key, value in arrays.items():
            i, name = key.split(".", 1)
            p = flat[int(i)]
            self.state.setdefault(id(p), {})[name] = backend.to_device_of(np.array(value), p.data)
        self.step_count = step_count


class SGD(Optimizer):
    """As torch.optim.SGD(params, lr, momentum, weight_decay) (no dampening, no Nesterov)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def update(self, p, group, state):
        """g = grad + wd p;  buf = momentum buf + g (buf = g at the first step);  p -= lr buf."""
        g = p.grad + group["weight_decay"] * p.data if group["weight_decay"] else p.grad
        if group["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                state["momentum_buffer"] *= group["momentum"]
                state["momentum_buffer"] += g
            g = state["momentum_buffer"]
        p.data -= group["lr"] * g


class Adam(Optimizer):
    """As torch.optim.Adam (weight_decay is an L2 term added to the gradient)."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def update(self, p, group, state):
        """m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  p -= lr m_hat / (sqrt(v_hat) + eps),
        with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t) (the moments start at 0: bias correction)."""
        b1, b2 = group["betas"]
        lr, wd, t = group["lr"], group["weight_decay"], self.step_count
        xp = backend.get_array_module(p.data)
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        kernel = dispatch.find("adam", p.data, p.grad, state["exp_avg"], state["exp_avg_sq"])
        if kernel is not None:                            # the same update as one compiled loop
            shrink = 1.0 - lr * wd if wd and self.decoupled else 1.0
            l2 = wd if wd and not self.decoupled else 0.0
            return kernel.update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], lr, b1, b2, group["eps"],
                                 1.0 - b1 ** t, 1.0 - b2 ** t, shrink, l2)
        g = p.grad
        if wd and self.decoupled:
            p.data *= 1.0 - lr * wd                       # AdamW: shrink the weights directly
        elif wd:
            g = g + wd * p.data                           # Adam: L2 penalty inside the gradient
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # The formulas below, written with in-place updates and one scratch array: at every
        # step this runs over all the weights, and temporaries would be a new array per operation.
        tmp = xp.multiply(g, 1.0 - b1)
        m *= b1
        m += tmp                                          # m = b1 m + (1 - b1) g     first moment (mean of g)
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp                                          # v = b2 v + (1 - b2) g^2   second moment (mean of g^2)
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t           # bias correction: m, v start at 0
        xp.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(bc2)
        tmp += group["eps"]                               # denom = sqrt(v / bc2) + eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / bc1
        p.data -= tmp                                     # p -= lr * (m / bc1) / denom


class AdamW(Adam):
    """As torch.optim.AdamW: decoupled weight decay (default 0.01)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm(params, max_norm):
    """Scale all gradients so their global L2 norm is at most max_norm; returns the norm before clipping."""
    params = list(params)
    # per tensor: g . g (a BLAS dot, in the gradient's dtype, as torch), summed in Python floats
    total = math.sqrt(sum(float(backend.get_array_module(p.grad).vdot(p.grad.ravel(), p.grad.ravel()))
                          for p in params))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.grad *= scale
    return total


def lr_schedule(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """Linear warm-up over warmup_steps, then cosine decay to min_lr at total_steps (step counts from 0)."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def noam_schedule(step, peak_lr, warmup_steps):
    """The schedule of "Attention Is All You Need" (5.3), with n = step + 1:

        lrate = d_model^-0.5 * min(n^-0.5, n * warmup^-1.5) = peak * min(n / warmup, sqrt(warmup / n))

    a linear rise to peak = d_model^-0.5 * warmup^-0.5 at n = warmup (7.0e-4 for the paper's
    d_model 512 and 4000 steps), then a decay as 1 / sqrt(n). Here the peak is given directly."""
    n, w = step + 1, max(warmup_steps, 1)
    return peak_lr * min(n / w, math.sqrt(w / n))
