"""Functions of NumPy's own OpenBLAS, called directly through ctypes where NumPy has no door to them.

NumPy calls its BLAS through np.matmul only; a few engine kernels call it themselves: the batch
routine ?gemm_batch_strided (batched_matmul.py) and ?gemm from inside compiled loops that run
without the GIL (lstm_parallel.py). The library is the one threadpoolctl finds for NumPy
(threads.py). Its symbols carry a prefix and suffix (scipy_ and 64_ in NumPy's wheels, whose
integers are 64-bit); elsewhere (another BLAS, an OpenBLAS without the routine) ``function``
returns None and the callers use NumPy.
"""
import ctypes

import numpy as np

from .threads import _numpy_blas

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112       # CBLAS's enum values
REAL = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}
_library = {}


def _open():
    """(ctypes library, symbol prefix, symbol suffix, integer type) of NumPy's OpenBLAS, or None."""
    if "lib" not in _library:
        _library["lib"] = None
        lib = _numpy_blas()
        if lib is not None and lib.info().get("internal_api") == "openblas":
            try:
                dll = ctypes.CDLL(lib.filepath)
            except OSError:
                return None
            prefix, suffix = getattr(lib, "_symbol_prefix", ""), getattr(lib, "_symbol_suffix", "")
            wide = suffix.startswith("64") or hasattr(dll, prefix + "cblas_sgemm64_")
            _library["lib"] = (dll, prefix, suffix, ctypes.c_int64 if wide else ctypes.c_int32)
    return _library["lib"]


def function(name, dtype, arguments):
    """The ctypes function cblas_<letter><name> (letter s or d for dtype) of NumPy's OpenBLAS, or
    None. ``arguments`` lists its argument kinds: "enum", "int", "real" or "pointer" (pointers
    are passed as integers, which compiled loops can hand over: array.ctypes.data)."""
    found = _open()
    if found is None or np.dtype(dtype) not in REAL:
        return None
    dll, prefix, suffix, integer = found
    letter, real = REAL[np.dtype(dtype)]
    kinds = {"enum": ctypes.c_int, "int": integer, "real": real, "pointer": ctypes.c_size_t}
    for symbol in (f"{prefix}cblas_{letter}{name}{suffix}", f"cblas_{letter}{name}"):
        fn = getattr(dll, symbol, None)
        if fn is not None:
            fn.restype = None
            fn.argtypes = [kinds[kind] for kind in arguments]
            return fn
    return None


DEFAULT_SPIN = 28                                # OpenBLAS's THREAD_TIMEOUT: idle threads spin 2^28 cycles


def spin_exponent():
    """n where NumPy's OpenBLAS lets its idle threads spin 2^n cycles before they sleep (the
    OPENBLAS_THREAD_TIMEOUT it read when it loaded, clamped to 4..30 as OpenBLAS does; 28 where
    unset), or None where NumPy's BLAS is not OpenBLAS or does not say."""
    found = _open()
    getter = getattr(found[0], "openblas_thread_timeout", None) if found else None
    if getter is None:
        return None
    getter.restype, getter.argtypes = ctypes.c_int, []
    n = getter()
    return DEFAULT_SPIN if n <= 0 else min(max(n, 4), 30)


GEMM = ["enum", "enum", "enum", "int", "int", "int", "real", "pointer", "int", "pointer", "int", "real",
        "pointer", "int"]
"""cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)"""
