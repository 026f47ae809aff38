"""CPU kernels: the lesson's formulas in NumPy, rearranged for speed on one core.

    reductions.py    row and column sums as BLAS products with a ones vector
    blocks.py        long element-wise formulas run in cache-sized blocks
    layer_norm.py    in-place LayerNorm, row means as matrix-vector products
    gelu.py          GELU through one exp (x sigmoid(2u)), in blocks; the float32 erfc in blocks
    attention.py     softmax attention updated in place, the scale folded into q
    linear.py        the bias gradient as a BLAS product
    embedding.py     the embedding gradient by sorting ids (np.add.at is slow)
    lstm_cell.py     one LSTM step in columns (4H, B), all four gates from one exp
    lstm.py          the LSTM over a sequence, the input products for all steps at once
    malloc.py        glibc malloc thresholds, so large temporaries are reused

Each module has ``accepts(...)`` (None, or why it cannot take these inputs) and ``forward(...)``,
whose cache carries its own ``backward``. tests/test_kernels.py checks each against the lesson.
"""
import numpy as np


def numpy_float(name, x):
    """None when x is a float32 or float64 NumPy array, else the reason a CPU kernel cannot take it."""
    if type(x) is not np.ndarray:
        return f"{name} is a {type(x).__module__}.{type(x).__name__}, not a NumPy array"
    if x.dtype not in (np.float32, np.float64):
        return f"{name} has dtype {x.dtype}, not float32/float64"
    return None
