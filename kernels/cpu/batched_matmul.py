"""A batch of matrix products in one BLAS call: out[n] = a[n] @ b[n] for every n of the batch.

np.matmul on (..., M, K) and (..., K, N) arrays calls BLAS once for each matrix of the batch, and
each call shares its one product out among all of BLAS's threads. At attention's shapes in a GPT
step (64 products of 128 x 64 by 64 x 128) the threads then spend about as long waking and
waiting as multiplying: on the 2-core Xeon of docs/benchmarks.md, q k^T for the 64 heads took
1.26 ms through np.matmul and 0.70 ms as one batch. OpenBLAS (0.3.30 and later) has that routine,
?gemm_batch_strided, which hands each thread whole products of the batch.

``matmul(a, b)`` calls it where NumPy's own BLAS is such an OpenBLAS, for float32 or float64
arrays of one batch shape whose matrices lie one fixed stride apart, each either row-major or a
transposed row-major matrix (a C-contiguous array, its swapaxes(-1, -2) view, a slice of heads,
...). Anything else (another BLAS, broadcasting, a matrix with a side of 1, a layout BLAS cannot
read) goes to np.matmul. Both compute the same products; the test compares them.

So do products of at most 100^3 multiply-adds each: for those the routine takes OpenBLAS's
small-matrix path, which crashes in OpenBLAS 0.3.31 (NumPy 2.4's wheels) when called through the
batch routine (a 3 x (8 x 8) batch is enough). np.matmul's overhead matters less at that size.
"""
import numpy as np

from . import openblas
from .openblas import NO_TRANS, ROW_MAJOR, TRANS

SMALL = 100 ** 3                                 # OpenBLAS's small-matrix path: M N K at most this
BATCH = ["enum", "enum", "enum", "int", "int", "int", "real", "pointer", "int", "int", "pointer", "int", "int",
         "real", "pointer", "int", "int", "int"]
"""cblas_?gemm_batch_strided(order, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
beta, C, ldc, stride_c, count)"""
_routines = {}


def _find_routines():
    """{dtype: the ctypes function of ?gemm_batch_strided} from NumPy's OpenBLAS; {} elsewhere."""
    found = {}
    for dtype in (np.float32, np.float64):
        fn = openblas.function("gemm_batch_strided", dtype, BATCH)
        if fn is not None:
            found[np.dtype(dtype)] = fn
    return found


def _routine(dtype):
    """The batch routine for this dtype, or None; found and checked against np.matmul on the
    first call (a wrong guess of its integer width would show there)."""
    if "all" not in _routines:
        _routines["all"] = {}
        found = _find_routines()
        rng = np.random.default_rng(0)
        for dtype_, fn in found.items():
            a, b = rng.standard_normal((3, 101, 103)).astype(dtype_), rng.standard_normal((3, 107, 103)).astype(dtype_)
            _routines["all"][dtype_] = fn         # try it
            ok = np.allclose(matmul(a, b.swapaxes(-1, -2)), np.matmul(a, b.swapaxes(-1, -2)), rtol=1e-5, atol=1e-5)
            if not ok:
                del _routines["all"][dtype_]
    return _routines["all"].get(np.dtype(dtype))


def available(dtype=np.float32):
    """True when matmul(a, b) on arrays of this dtype is one BLAS call."""
    return _routine(dtype) is not None


def _matrix_layout(x):
    """(transposed, leading dimension) of the matrices x[..., :, :] as BLAS reads a row-major
    matrix, or None: either rows are contiguous (x[n] is row-major) or columns are (x[n] is the
    transpose of a row-major matrix)."""
    rows, cols = x.shape[-2:]
    s_row, s_col = x.strides[-2:]
    item = x.itemsize
    if s_col == item and s_row >= cols * item and s_row % item == 0:
        return False, s_row // item
    if s_row == item and s_col >= rows * item and s_col % item == 0:
        return True, s_col // item
    return None


def _batch_stride(x):
    """The stride (in elements) from one matrix of x to the next over all batch dimensions
    flattened in C order, or None when the batch does not lie on one stride."""
    dims = [(n, s) for n, s in zip(x.shape[:-2], x.strides[:-2]) if n != 1]
    if not dims:
        return 0
    stride = dims[-1][1]
    for (n, s), (n_next, s_next) in zip(dims[:-1], dims[1:]):
        if s != s_next * n_next:
            return None
    if stride <= 0 or stride % x.itemsize:
        return None
    return stride // x.itemsize


def _products(fn, a, b, out, la, lb):
    """out[n] = a[n] @ b[n] by the batch routine; False when some batch does not lie on one stride.

    A batch that does not (the heads of a (B, T, H, D) array seen as (B, H, T, D): H apart by D,
    B apart by T H D) is one call per index of its first axis."""
    sa, sb = _batch_stride(a), _batch_stride(b)
    if sa is None or sb is None:
        return a.ndim > 3 and all(_products(fn, a[i], b[i], out[i], la, lb) for i in range(a.shape[0]))
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    fn(ROW_MAJOR, TRANS if la[0] else NO_TRANS, TRANS if lb[0] else NO_TRANS, M, N, K, 1.0,
       a.ctypes.data, la[1], sa, b.ctypes.data, lb[1], sb, 0.0, out.ctypes.data, N, M * N, out.size // (M * N))
    return True


def matmul(a, b):
    """a: (..., M, K), b: (..., K, N) of one batch shape -> (..., M, N): np.matmul(a, b), as one
    BLAS call over the batch where that routine is available and the layouts allow it."""
    if (a.ndim < 3 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2] or a.dtype != b.dtype
            or a.shape[-1] != b.shape[-2] or min(a.shape[-2:] + b.shape[-1:]) < 2
            or a.shape[-2] * a.shape[-1] * b.shape[-1] <= SMALL):
        return np.matmul(a, b)
    fn = _routine(a.dtype)
    la, lb = (_matrix_layout(a), _matrix_layout(b)) if fn is not None else (None, None)
    if la is None or lb is None:
        return np.matmul(a, b)
    out = np.empty(a.shape[:-2] + (a.shape[-2], b.shape[-1]), dtype=a.dtype)
    if not _products(fn, a, b, out, la, lb):
        np.matmul(a, b, out=out)
    return out
