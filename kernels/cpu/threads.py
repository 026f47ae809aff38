"""How many threads NumPy's BLAS runs, set through threadpoolctl (OpenBLAS, MKL, BLIS).

Code that runs one thread per core itself (DataParallel's replicas, the shards of a flash-attention
batch) sets BLAS to one thread for that time, ``with blas_threads(1):``: two threads each asking a
2-thread BLAS for its threads would wait on each other.
"""
import ctypes
import os

import numpy as np
from threadpoolctl import ThreadpoolController

_blas = {}


def _numpy_blas():
    """threadpoolctl's controller of the BLAS library NumPy calls, or None where none is found.

    threadpoolctl knows OpenBLAS, MKL and BLIS on every platform. NumPy's own library is preferred
    (its path lies under NumPy's folder in NumPy's wheels), since PyTorch may bring another BLAS.
    """
    if "lib" not in _blas:
        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        numpy_dir = np.__file__.rsplit("numpy", 1)[0]
        ours = [lib for lib in libs if "numpy" in lib.filepath.replace(numpy_dir, "", 1)] or libs
        _blas["lib"] = ours[0] if ours else None
    return _blas["lib"]


class blas_threads:
    """``with blas_threads(n):`` runs the block with NumPy's BLAS using n threads, then restores it.

    ``blas_threads.available()`` says whether NumPy's BLAS was found in this process, and
    ``blas_threads.current()`` how many threads it runs (None where it was not found).
    """

    def __init__(self, n):
        self.n, self.saved = n, None

    @staticmethod
    def available():
        """True when threadpoolctl can set the thread count of NumPy's BLAS."""
        return _numpy_blas() is not None

    @staticmethod
    def current():
        """The number of threads NumPy's BLAS runs now, or None where it was not found."""
        lib = _numpy_blas()
        return None if lib is None else lib.get_num_threads()

    def __enter__(self):
        self.saved = blas_threads.current()
        _numpy_blas().set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        _numpy_blas().set_num_threads(self.saved)
        return False


try:                                   # glibc's sched_getcpu: the core a thread runs on now
    _libc = ctypes.CDLL(None) if hasattr(os, "sched_setaffinity") else None
    _libc.sched_getcpu
except (OSError, AttributeError):
    _libc = None


def current_cpu():
    """The core the calling thread runs on, or -1 where the system does not say."""
    return _libc.sched_getcpu() if _libc is not None else -1


class off_core:
    """``with off_core(cpu):`` keeps the calling thread off core ``cpu`` (Linux), then restores
    its affinity. For a worker thread woken by the main thread to run beside it: the scheduler
    may wake it on the main thread's own core, and both then share that core for milliseconds
    (an LSTM split in two, lstm_parallel.py, ran at half speed so). Flash attention's shards
    start the same way."""

    def __init__(self, cpu):
        self.cpu, self.saved = cpu, None

    def __enter__(self):
        if self.cpu >= 0 and hasattr(os, "sched_setaffinity"):
            self.saved = os.sched_getaffinity(0)
            if self.saved - {self.cpu}:
                os.sched_setaffinity(0, self.saved - {self.cpu})
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.sched_setaffinity(0, self.saved)
        return False

    @staticmethod
    def call(cpu, fn, *args):
        """fn(*args) off core ``cpu``: what a worker thread submitted to a pool runs."""
        with off_core(cpu):
            return fn(*args)
