"""The array backend: NumPy (CPU, the default) or CuPy (GPU).

Every layer asks this module for ``xp`` instead of importing NumPy, so the same
line ``xp.matmul(a, b)`` runs on the CPU or on the GPU. Switch with

    import minillm; minillm.use("cupy")      # in Python
    MINILLM_BACKEND=cupy python train.py     # from the shell

Arrays are created on the current backend; a Module moves its parameters with
``module.to("cupy")``. Seeding goes through ``manual_seed`` so CPU and GPU runs
start from the same weights: initial weights are always drawn on the CPU with
one NumPy generator and then copied to the device.
"""
import numbers
import os
import threading

import numpy as np

_INSTALL_HINT = (
    'CuPy is needed for the "cupy" backend. Install it with: pip install "minillm[gpu]" '
    "(or the cupy-cudaXXx wheel that matches your CUDA version)."
)

_state = {"name": None, "xp": None}      # chosen at first use: MINILLM_BACKEND, else numpy
_rng = {"cpu": np.random.default_rng(0)}
_thread = threading.local()     # .rng: a generator this thread uses instead of _rng["cpu"] (DataParallel)
DEFAULT_DTYPE = np.float32


def _import_cupy():
    """Import CuPy and check that a GPU is present; raise a clear error otherwise."""
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(_INSTALL_HINT) from e
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise RuntimeError(f"CuPy is installed but no CUDA GPU is usable ({e}). " + _INSTALL_HINT) from e
    if n == 0:
        raise RuntimeError("CuPy is installed but no CUDA GPU was found.")
    return cupy


def use(name):
    """Select the backend for new arrays: "numpy" or "cupy". Returns the array module."""
    if name not in ("numpy", "cupy"):
        raise ValueError(f'backend must be "numpy" or "cupy", got {name!r}')
    _state["xp"] = np if name == "numpy" else _import_cupy()
    _state["name"] = name
    return _state["xp"]


def current():
    """Name of the current backend: "numpy" or "cupy"."""
    if _state["name"] is None:
        _from_environment()
    return _state["name"]


def xp():
    """The current array module (numpy or cupy)."""
    current()
    return _state["xp"]


def _from_environment():
    """Take the backend from MINILLM_BACKEND (default numpy), read at first use rather than at import
    so that an unusable value is reported by whoever uses it (the command line in one line)."""
    name = os.environ.get("MINILLM_BACKEND", "numpy")
    try:
        use(name)
    except (RuntimeError, ValueError) as e:    # say where the unusable choice came from
        raise type(e)(f"MINILLM_BACKEND={name!r}: {e}") from None


def cupy_available():
    """True when CuPy imports and sees at least one GPU."""
    try:
        _import_cupy()
        return True
    except RuntimeError:
        return False


def get_array_module(x):
    """numpy or cupy, whichever owns array ``x`` (numpy for anything that is not a CuPy array)."""
    if type(x) is np.ndarray:                  # the common case first: this runs dozens of times a step
        return np
    if type(x).__module__.startswith("cupy"):
        import cupy
        return cupy
    return np


def to_numpy(x):
    """Copy an array to the host as a NumPy array (no copy for NumPy input)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def to_device(x, backend=None):
    """Move an array to ``backend`` ("numpy"/"cupy"; default: the current backend)."""
    backend = backend or current()
    if backend == "numpy":
        return to_numpy(x)
    cupy = _import_cupy()
    return cupy.asarray(x)


def to_device_of(x, ref):
    """Move ``x`` to whichever device holds ``ref`` (token ids to the embedding's device)."""
    if get_array_module(x) is get_array_module(ref):
        return x
    return to_device(x, "numpy" if get_array_module(ref) is np else "cupy")


def check_seed(seed, name="seed", allow_none=False):
    """TypeError or ValueError naming the argument unless seed is an integer >= 0 (NumPy's generators
    refuse negative seeds; None, a fresh draw from the operating system, only where allow_none)."""
    if seed is None and allow_none:
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0{' or None' if allow_none else ''}, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {seed}")


def manual_seed(seed):
    """Seed every random draw minillm makes (initial weights, dropout, batches, sampling)."""
    check_seed(seed)
    _rng["cpu"] = np.random.default_rng(seed)
    if current() == "cupy":
        _state["xp"].random.seed(seed)


def cpu_rng():
    """The NumPy Generator used for initial weights and data sampling."""
    return _rng["cpu"]


def rand(shape, dtype=None):
    """Uniform [0, 1) samples on the current backend (dropout masks, sampling)."""
    dtype = dtype or DEFAULT_DTYPE
    if current() == "cupy":
        return _state["xp"].random.random_sample(shape, dtype=dtype)
    rng = getattr(_thread, "rng", None) or _rng["cpu"]
    return rng.random(shape, dtype=np.float64).astype(dtype, copy=False)


class thread_rng:
    """``with thread_rng(gen):`` makes ``rand`` in this thread draw from ``gen`` (a NumPy Generator).

    DataParallel gives each replica's thread its own generator, seeded from the main one, so the
    dropout masks do not depend on the order in which the threads happen to run.
    """

    def __init__(self, gen):
        self.gen, self.saved = gen, None

    def __enter__(self):
        self.saved, _thread.rng = getattr(_thread, "rng", None), self.gen
        return self.gen

    def __exit__(self, *exc):
        _thread.rng = self.saved
        return False
