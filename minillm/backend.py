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
import ctypes
import os
import sys
import threading

import numpy as np

_INSTALL_HINT = (
    'CuPy is needed for the "cupy" backend. Install it with: pip install "minillm[gpu]" '
    "(or the cupy-cudaXXx wheel that matches your CUDA version)."
)

_state = {"name": "numpy", "xp": np}
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
    return _state["name"]


def xp():
    """The current array module (numpy or cupy)."""
    return _state["xp"]


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


def sum_rows(x):
    """x.sum(axis=-1, keepdims=True) for x: (..., C) -> (..., 1), computed as x @ ones(C).

    Why a matrix-vector product: NumPy sums a short contiguous last axis row by row, which
    measured 3-7x slower than one BLAS product over all rows for C = 64 to 512 (LayerNorm's mean,
    softmax denominators). The result is the same sum, added in a different order.
    """
    return (x @ _ones(x.shape[-1], x.dtype, get_array_module(x)))[..., None]


def sum_columns(x2):
    """x2.sum(axis=0) for x2: (N, C) -> (C,), computed as ones(N) @ x2 (bias gradients).

    The same BLAS reason as sum_rows: 1.5-5x faster than NumPy's reduction here.
    """
    return _ones(x2.shape[0], x2.dtype, get_array_module(x2)) @ x2


_ones_cache = {}


def _ones(n, dtype, xp_):
    """A vector of n ones, made once per (n, dtype, backend) and kept: making it anew at every call
    cost as much as the sum itself for one row (token-by-token generation)."""
    key = (n, np.dtype(dtype).str, xp_.__name__)
    if key not in _ones_cache:
        ones = xp_.ones(n, dtype=dtype)
        if xp_ is np:
            ones.flags.writeable = False      # shared: nobody may change it
        _ones_cache[key] = ones
    return _ones_cache[key]


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


def manual_seed(seed):
    """Seed every random draw minillm makes (initial weights, dropout, batches, sampling)."""
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


def scatter_add(target, index, values):
    """target[index[i]] += values[i] for index: (N,) ints, values: (N, C), repeated indices adding up
    (the embedding backward).

    CuPy: ``add.at``, one atomic add per element. NumPy's ``add.at`` handles one element at a time
    and is slow, so on the CPU the rows are sorted by index and each run of equal indices is
    summed with ``add.reduceat``: the same sums, in a few fast passes.
    """
    xp_ = get_array_module(target)
    if xp_ is not np:
        xp_.add.at(target, index, values)
        return target
    if index.size == 0:
        return target
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])   # first row of each run
    target[sorted_index[starts]] += np.add.reduceat(values[order], starts, axis=0)
    return target


def for_blocks(fn, n, like, block=1 << 16):
    """Call fn(start, stop) over [0, n) in blocks of ``block`` items, one after the other.

    For long elementwise formulas on NumPy (the GELU): a block of 64K float32 values (256 KB)
    stays in the CPU's L2 cache across the several passes of the formula, instead of streaming
    the whole (B, T, 4C) array through main memory at every pass. (Running the blocks on a thread
    pool was tried and measured no faster: OpenBLAS's own threads hold the cores.)
    On CuPy (``like`` is a CuPy array), where each operation is one parallel GPU kernel,
    fn(0, n) is called once.
    """
    if get_array_module(like) is not np:
        fn(0, n)
        return
    for i in range(0, n, block):
        fn(i, min(i + block, n))


def keep_freed_memory():
    """Let the C allocator keep freed array memory for reuse instead of handing it back to the OS.

    A training step allocates and frees the same large temporaries (activations of shape
    (B, T, 4C), attention scores) every step. With glibc's defaults each of them is a fresh mmap
    that the kernel must page-fault and zero again, which costs about 5-10 % of a CPU training
    step here. Raising the mmap and trim thresholds (what PyTorch gets from its own allocator)
    keeps that memory in the process: peak memory is unchanged, idle memory may stay higher.
    Linux/glibc only; MINILLM_MALLOC_TUNING=0 turns it off. Called once at import.
    """
    if os.environ.get("MINILLM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)    # glibc's largest allowed value
                    and libc.mallopt(M_TRIM_THRESHOLD, 512 * 2**20))
    except (OSError, AttributeError):                               # not glibc (musl, ...)
        return False


keep_freed_memory()
_ENV_BACKEND = os.environ.get("MINILLM_BACKEND", "numpy")
if _ENV_BACKEND != "numpy":
    try:
        use(_ENV_BACKEND)
    except (RuntimeError, ValueError) as e:    # say where the unusable choice came from
        raise type(e)(f"MINILLM_BACKEND={_ENV_BACKEND!r}: {e}") from None
