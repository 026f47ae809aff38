"""Numba, where it is installed: the one decorator every compiled CPU kernel uses.

    @compiled
    def _rows(x, out):                  # plain loops over NumPy arrays
        for i in prange(x.shape[0]):    # rows split between the threads
            ...

``compiled`` is numba.njit with parallel=True (prange loops run on all threads; a serial twin
runs where threads are already shared out, see _Compiled), nogil=True (a kernel releases the
GIL, so DataParallel's threads run kernels side by side), cache=True (the machine code is kept in
__pycache__, so only the first run on a machine compiles), error_model="numpy" (x / 0 gives inf
or nan as NumPy does, instead of a check before every division that keeps the loop from running
in vector registers) and fastmath off (float32 stays float32 and every operation is rounded as
written, so results match the lesson's within float32 rounding), except that
``compiled(sums=True)`` may reorder sums, and the exp and tanh polynomials (vector_exp.py,
vector_tanh.py) may fuse their multiply-adds. Without Numba, ``compiled`` hands back the Python
function unchanged, ``unavailable()`` says why, and the dispatch never picks these kernels.
"""
import os
import threading
import types

from . import numpy_float

try:
    import numba
    from numba import prange
    _MISSING = None
    # Numba's default here is the OpenMP layer, whose idle threads spin after each kernel and take
    # the cores from OpenBLAS's (and OpenBLAS's spinning threads take them back): a GPT step ran
    # 0.58-0.62 s with it and 0.32-0.42 s with the plain pthread work queue on the 2-core machine
    # of docs/benchmarks.md. NUMBA_THREADING_LAYER set by the user wins.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:                   # the lesson path runs instead; see unavailable()
    numba = None
    prange = range
    _MISSING = "Numba is not installed (pip install numba)"

HERE = os.path.dirname(os.path.abspath(__file__))


def kernel_sources():
    """The engine's CPU source files (kernels/cpu/*.py), in name order."""
    return sorted(os.path.join(HERE, name) for name in os.listdir(HERE) if name.endswith(".py"))


def _register_cache_locator():
    """Keep the cached machine code of every kernel here only while none of these files changed.

    Numba checks a cached kernel against the file that defines it, but the kernels inline helpers
    from other files (vector_exp.exp, vector_max.key, vector_tanh.tanh): an edit to exp alone
    would leave every kernel that calls it running the old exp from __pycache__. This locator
    stamps each kernel of this folder with the times and sizes of all of its files. It uses
    Numba's cache internals; where they differ (another Numba version), Numba's own check applies.
    """
    try:
        from numba.core.caching import CacheImpl, InTreeCacheLocator
        CacheImpl._locator_classes
    except (ImportError, AttributeError):
        return None

    class KernelsCacheLocator(InTreeCacheLocator):
        def get_source_stamp(self):
            return tuple((os.path.basename(f), os.stat(f).st_mtime, os.stat(f).st_size) for f in kernel_sources())

        @classmethod
        def from_function(cls, py_func, py_file):
            if numba.config.CACHE_DIR or os.path.dirname(os.path.abspath(py_file)) != HERE:
                return None                     # NUMBA_CACHE_DIR, set by the user, wins
            return super().from_function(py_func, py_file)

    CacheImpl._locator_classes.insert(0, KernelsCacheLocator)
    return KernelsCacheLocator


cache_locator = _register_cache_locator() if numba is not None else None


# Element-wise kernels on fewer values than this run on one thread: on the 2-core machine of
# docs/benchmarks.md, waking the work queue's threads costs 50-100 us a call, and an Adam update
# of 262K values or the cross-entropy of 2048 x 256 logits ran faster serially.
SERIAL_BELOW = 1 << 20


class _Compiled:
    """A kernel compiled twice: with prange loops on all threads, and serial (prange as range).

    The serial one runs in any thread but the main one, and inside ``with one_thread_each():``
    (DataParallel's replicas, the halves of a flash-attention batch): the work-queue threading
    layer may not be entered from two threads at once, and each such thread already has its core.
    """

    def __init__(self, function, fastmath, one_thread, serial_below=0):
        self.__doc__, self.__name__ = function.__doc__, function.__name__
        self.serial_below = serial_below
        options = dict(nogil=True, cache=True, fastmath=fastmath, error_model="numpy")
        if one_thread:                # a kernel with no prange loop: one compilation serves both
            self.parallel = self.serial = numba.njit(**options)(function)
            return
        self.parallel = numba.njit(parallel=True, **options)(function)
        twin = types.FunctionType(function.__code__, function.__globals__, function.__name__ + "_serial",
                                  function.__defaults__, function.__closure__)
        twin.__qualname__ = function.__qualname__ + "_serial"        # its own cache file
        self.serial = numba.njit(**options)(twin)

    def __call__(self, *args):
        if self.parallel is self.serial:
            return self.serial(*args)
        serial = in_shared_thread() or args[0].size < self.serial_below
        return (self.serial if serial else self.parallel)(*args)


class _State:
    serial = 0                        # > 0 inside one_thread_each()


_state = _State()


class one_thread_each:
    """``with one_thread_each():`` the compiled kernels run serially, for code that runs one thread
    per core itself (and usually one BLAS thread, blas_threads(1))."""

    def __enter__(self):
        _state.serial += 1
        return self

    def __exit__(self, *exc):
        _state.serial -= 1
        return False


def in_shared_thread():
    """True inside one_thread_each() or in any thread but the main one: the cores are shared out."""
    return _state.serial > 0 or threading.current_thread() is not threading.main_thread()


def compiled(function=None, sums=False, one_thread=False, serial_below=0):
    """The kernel ``function`` compiled by Numba (parallel and serial), or itself without Numba.

    ``@compiled(sums=True)`` lets the compiler reorder the kernel's sums (LLVM's reassoc and nsz
    flags), so a row sum runs in vector registers, as BLAS and NumPy's pairwise sums also reorder
    them; nothing else changes (no assumption that values are finite).
    ``@compiled(one_thread=True)`` is for a kernel with no prange loop, whose work is too small
    to share: waking the other threads costs tens of microseconds on every call.
    ``@compiled(serial_below=n)`` runs on one thread when the first argument has fewer than n
    elements, for the same reason."""
    if function is None:
        return lambda f: compiled(f, sums, one_thread, serial_below)
    if numba is None:
        return function
    return _Compiled(function, {"reassoc", "nsz"} if sums else False, one_thread, serial_below)


def unavailable(**arrays):
    """None when Numba is installed and every array is a float32/float64 NumPy array of one dtype;
    else the reason, recorded by the dispatch."""
    if _MISSING or os.environ.get("MINILLM_NUMBA") == "0":
        return _MISSING or "MINILLM_NUMBA=0"
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        reason = numpy_float(name, a)
        if reason:
            return reason
        if dtype is not None and a.dtype != dtype:
            return f"{name} has dtype {a.dtype}, the others {dtype}"
        dtype = a.dtype
    return None


def threads():
    """How many threads the compiled kernels use (1 without Numba)."""
    return 1 if numba is None else numba.get_num_threads()


def set_threads(n):
    """Use n threads in the compiled kernels (at most the cores Numba found)."""
    if numba is not None:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def describe():
    """One line for the command line: which kernels run and on how many threads."""
    if os.environ.get("MINILLM_KERNELS") == "plain":
        return "kernels: the lesson code (MINILLM_KERNELS=plain)"
    reason = unavailable()
    if reason:
        return f"kernels: NumPy only ({reason})"
    return f"kernels: Numba {numba.__version__}, {threads()} thread(s)"
