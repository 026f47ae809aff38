"""exp inside the compiled kernels, in float32 plain arithmetic the compiler runs 16 lanes at a time.

Numba compiles np.exp to one call of the C library per element, which cannot run in vector
registers. In float32, ``exp`` here splits x into k ln 2 + r (Cody and Waite: ln 2 in two parts,
so r is exact), evaluates e^r by its Taylor polynomial to degree 7 (|r| <= ln 2 / 2, where the
first dropped term is below 6e-9), and multiplies by 2^k, whose float32 bits are (k + 127) << 23:

    k = floor(x log2(e) + 1/2),   r = (x - k ln2_hi) - k ln2_lo,   e^x = (2 P(r)) 2^(k-1)

(2^(k-1) and 2 P(r) keep the scale a normal number up to e^88.72, the largest float32). Its
relative error is below 2 float32 roundings (tests/test_kernels.py checks 1.1 million points). x
above 88.72 gives inf, as NumPy; x below -86.98 gives 0 where NumPy keeps subnormal numbers (below
1.7e-38). The polynomial may use fused multiply-adds (LLVM's contract flag, on this function
only: the kernels that call it keep every other operation rounded as written); each Horner step
is then one instruction and one rounding, which made exp 1.65 times faster on the Xeon of
docs/benchmarks.md and its error smaller. In float64 ``exp`` is np.exp, which Numba compiles to the
C library's exp, so the float64 tests compare formulas, not this approximation.
"""
import math

import numpy as np

from .jit import compiled, numba, prange


def exp(x):
    """exp inside the compiled kernels: the polynomial above for float32, np.exp for float64."""
    return np.exp(x)


if numba is not None:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _float32_from_bits(typingctx, bits):
        """The float32 whose 32 bits are those of the int32 ``bits`` (a reinterpretation, no
        conversion: LLVM's bitcast)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.FloatType())
        return types.float32(types.int32), codegen

    _TAYLOR = np.array([1.0 / math.factorial(i) for i in range(8)], dtype=np.float32)
    _LOG2E = np.float32(1.4426950408889634)
    _LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)   # hi has few bits: k ln2_hi is exact
    _LO, _HI = np.float32(-86.98), np.float32(88.8)   # 2^(k-1) normal: k >= -125
    _ZERO, _HALF, _TWO = np.float32(0.0), np.float32(0.5), np.float32(2.0)
    _BIAS_MINUS_1, _MANTISSA_BITS = np.int32(126), np.int32(23)

    @overload(exp, jit_options={"fastmath": {"contract"}})
    def _exp_for(x):
        if x != types.float32:
            return lambda x: np.exp(x)

        def polynomial(x):
            c = _HI if x > _HI else (_LO if x < _LO else x)
            k = np.floor(c * _LOG2E + _HALF)
            r = (c - k * _LN2_HI) - k * _LN2_LO
            t = _TAYLOR
            p = ((((((t[7] * r + t[6]) * r + t[5]) * r + t[4]) * r + t[3]) * r + t[2]) * r + t[1]) * r + t[0]
            scale = _float32_from_bits((np.int32(k) + _BIAS_MINUS_1) << _MANTISSA_BITS)   # 2^(k-1)
            return _ZERO if x < _LO else (_TWO * p) * scale
        return polynomial


@compiled
def exp_into(x, out):
    """out = exp(x) elementwise, x and out flat: the compiled exp as a NumPy-callable loop."""
    for i in prange(x.shape[0]):
        out[i] = exp(x[i])
