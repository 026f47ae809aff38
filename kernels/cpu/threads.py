"""How many threads NumPy's BLAS runs, set through threadpoolctl (OpenBLAS, MKL, BLIS).

Code that runs one thread per core itself (DataParallel's replicas, the shards of a flash-attention
batch) sets BLAS to one thread for that time, ``with blas_threads(1):``: two threads each asking a
2-thread BLAS for its threads would wait on each other.
"""
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
