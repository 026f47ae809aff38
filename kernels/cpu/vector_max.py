"""A row maximum of float32 values that the compiler runs in vector registers.

``top = max(top, x[c])`` over a row is a chain: each comparison waits for the one before, and
Numba's compiler keeps such a float maximum scalar (it may not reorder float comparisons, since a
NaN could change which value wins), about two cycles per value. Integers have no NaN, and their
maximum runs 16 lanes at a time. So the float32 bits are read as an int32 and mapped to a key
whose integer order is the float order:

    key(x) = b XOR ((b >> 31) AND 0x7FFFFFFF),   b = the bits of x as int32

A non-negative float's bits already count up with its value; a negative float's bits count up
as its magnitude grows, so the low 31 bits are flipped and the order turns round. The map is its
own inverse, so max over the keys, mapped back, is the largest value:

    top = from_key(max(key(x_0), key(x_1), ...))

-0.0 ranks below +0.0, inf above every finite value, and a NaN with its sign bit clear above inf,
so a row with such a NaN has maximum NaN, as np.max; a NaN with the sign bit set ranks below
-inf, and the exp(x - max) that every caller takes next turns its row to NaN all the same. In
float64 ``key`` and ``from_key`` are the value itself and the maximum is the ordinary one: the
float64 tests compare formulas, not this trick. ``row_max`` is the loop the kernels call (flash
attention's tile pass keeps its own, which also scales each score as it reads it).
"""
import numpy as np

from .jit import compiled, numba, prange


def key(x):
    """The value whose order is x's: an int32 for float32 (above), x itself for float64."""
    return x


def from_key(k):
    """The inverse of ``key``: the float32 with key k, or k itself for float64."""
    return k


if numba is not None:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic, overload

    from .vector_exp import _float32_from_bits

    @intrinsic
    def _bits_of_float32(typingctx, x):
        """The int32 whose 32 bits are those of the float32 x (LLVM's bitcast, no conversion)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(32))
        return types.int32(types.float32), codegen

    _LOW_BITS, _SIGN_SHIFT = np.int32(0x7FFFFFFF), np.int32(31)

    @overload(key)
    def _key_for(x):
        if x != types.float32:
            return lambda x: x

        def ordered(x):
            b = _bits_of_float32(x)                         # >> keeps the sign: all ones or zero
            return np.int32(b ^ ((b >> _SIGN_SHIFT) & _LOW_BITS))   # Numba widens int32 arithmetic
        return ordered

    @overload(from_key)
    def _from_key_for(k):
        if k != types.int32:
            return lambda k: k

        def value(k):
            return _float32_from_bits(np.int32(k ^ ((k >> _SIGN_SHIFT) & _LOW_BITS)))
        return value


def row_max(row, end, start):
    """max(start, row[0], ..., row[end-1]) through the keys: the loop every kernel here uses.
    row: (C,) a view of one row; end <= C; start is returned when end = 0."""
    top_key = key(start)
    for c in range(end):
        top_key = max(top_key, key(row[c]))
    return from_key(top_key)


if numba is not None:
    row_max = numba.njit(inline="always", error_model="numpy")(row_max)   # inlined into each kernel


@compiled
def row_max_into(x, out):
    """out[i] = max_c x[i, c], x: (N, V), V >= 1: row_max as a NumPy-callable loop."""
    for i in prange(x.shape[0]):
        out[i] = row_max(x[i], x.shape[1], x[i, 0])
