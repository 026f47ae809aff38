"""Which implementation runs: the lesson's code in ``minillm/nn/``, or an engine kernel.

A lesson function asks at its first line, and runs its own code when the answer is None:

    kernel = dispatch.find("layer_norm", x)          # a module with forward/backward, or None
    if kernel is not None:
        return kernel.forward(x, weight, bias, eps)

A kernel's forward returns a cache of its own type; the lesson's backward hands such a cache
back with ``dispatch.backward("layer_norm", dout, cache)``, which calls ``cache.backward(dout)``.

The environment variable MINILLM_KERNELS (read at every call, so a test can change it) chooses:
    auto   (default) the first eligible kernel in KERNELS[op], else the lesson
    plain  the lesson code everywhere
``last(op)`` tells what the latest call of ``op`` ran and why, as a Choice.
"""
import importlib
import os
from typing import NamedTuple

# For each op, the kernels that may take it, in order of preference. Each name is a module
# minillm.kernels.<name> with accepts(*args, **options) -> None or the reason it cannot,
# and forward(*args, **options) -> (out, cache).
KERNELS = {
    "scaled_dot_product_attention": ("cuda.attention", "cpu.flash_attention", "cpu.attention"),
    "layer_norm": ("cpu.fused_layer_norm", "cpu.layer_norm"),
    "gelu": ("cpu.fused_gelu", "cpu.gelu"),
    "softmax": ("cpu.fused_softmax",),
    "log_softmax": ("cpu.fused_softmax",),
    "linear": ("cpu.linear",),
    "embedding": ("cpu.embedding",),
    "lstm_cell": ("cpu.lstm_cell",),
    "lstm": ("cpu.fused_lstm", "cpu.lstm"),
    "embedding_lstm": ("cpu.embedding_lstm",),
    "adam": ("cpu.fused_adam",),
    "cross_entropy": ("cpu.fused_cross_entropy",),
}
MODES = ("auto", "plain")


class Choice(NamedTuple):
    """What one call ran: implementation "plain" (the lesson) or a kernel's name, and why."""
    implementation: str
    reason: str


_last = {}
_modules = {}


def mode():
    """MINILLM_KERNELS: "auto" (default) or "plain"; anything else is an error naming the variable."""
    value = os.environ.get("MINILLM_KERNELS", "auto")
    if value not in MODES:
        raise ValueError(f"MINILLM_KERNELS must be one of {MODES}, got {value!r}")
    return value


def _module(name):
    """minillm.kernels.<name>, imported at its first use (the lesson never imports the engine)."""
    if name not in _modules:
        _modules[name] = importlib.import_module(f"{__package__}.{name}")
    return _modules[name]


def find(op, *args, **options):
    """The first kernel of KERNELS[op] that accepts these arguments, or None for the lesson code.

    The choice is recorded: ``last(op)`` returns it.
    """
    if mode() == "plain":
        _last[op] = Choice("plain", "MINILLM_KERNELS=plain")
        return None
    reasons = []
    for name in KERNELS[op]:
        kernel = _module(name)
        why_not = kernel.accepts(*args, **options)
        if why_not is None:
            _last[op] = Choice(name, "eligible")
            return kernel
        reasons.append(f"{name}: {why_not}")
    _last[op] = Choice("plain", "; ".join(reasons))
    return None


def backward(op, dout, cache, *more):
    """The backward of the kernel that made ``cache`` (a kernel's cache type knows its backward)."""
    _last[op + " backward"] = Choice(type(cache).__module__.rsplit("kernels.", 1)[-1], "made the cache")
    return cache.backward(dout, *more)


def last(op):
    """The Choice of the latest call of ``op`` ("layer_norm", "layer_norm backward", ...), or None."""
    return _last.get(op)
