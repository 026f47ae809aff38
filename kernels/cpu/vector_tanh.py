"""tanh in float32 as a rational function the compiler runs in vector registers (Numba).

``tanh``, in float32: a rational function x P(u) / Q(u), u = (x/9)^2, fitted to tanh on [-9, 9]
and clamped outside (there tanh rounds to +-1 in float32) and to [-1, 1]; its relative error is
below 4e-7, about three float32 roundings. It is plain multiplies and adds, so the compiler runs it 16 lanes at a time; a call to
the exp or tanh of the C library cannot be vectorised. Its Horner steps may be fused multiply-adds,
as vector_exp's. In float64 it is the exact np.tanh, so the float64 tests compare the derivative
formulas, not an approximation.

The LSTM kernels (fused_lstm.py, lstm_parallel.py) take tanh and sigmoid(z) = (1 + tanh(z/2)) / 2
from it.
"""
import numpy as np

from .jit import compiled, numba

# tanh(x) ~ x P(u) / Q(u), u = (x / 9)^2, |x| <= 9: coefficients of P and Q from u^0 up
TANH_CLAMP = 9.0
TANH_P = (0.99999994, 10.46458705, 19.16321796, 4.92515395, -0.55017021, 0.06365465)
TANH_Q = (1.0, 37.46454706, 155.91057021, 121.22286389)


def rational_tanh(x):
    """The float32 approximation as NumPy code: x P(u) / Q(u), u = (x/9)^2, x clamped to [-9, 9]
    and the result to [-1, 1]."""
    x = np.clip(np.asarray(x, np.float32), -TANH_CLAMP, TANH_CLAMP).astype(np.float32)
    u = x * x * np.float32(1.0 / TANH_CLAMP ** 2)
    p, q = np.float32(0.0), np.float32(0.0)
    for c in TANH_P[::-1]:
        p = p * u + np.float32(c)
    for c in TANH_Q[::-1]:
        q = q * u + np.float32(c)
    return np.clip(x * p / q, -1, 1).astype(np.float32)


def tanh(x):
    """tanh inside the compiled kernels: the rational function for float32, np.tanh for float64."""
    return np.tanh(x)


if numba is not None:
    _P = np.array(TANH_P, dtype=np.float32)
    _Q = np.array(TANH_Q, dtype=np.float32)
    _U = np.float32(1.0 / TANH_CLAMP ** 2)
    _HI, _LO, _ONE = np.float32(TANH_CLAMP), np.float32(-TANH_CLAMP), np.float32(1.0)

    from numba.extending import overload

    @overload(tanh, jit_options={"fastmath": {"contract"}})
    def _tanh_for(x):
        if x != numba.types.float32:
            return lambda x: np.tanh(x)

        def rational(x):
            x = _HI if x > _HI else (_LO if x < _LO else x)
            u = x * x * _U
            p = ((((_P[5] * u + _P[4]) * u + _P[3]) * u + _P[2]) * u + _P[1]) * u + _P[0]
            q = ((_Q[3] * u + _Q[2]) * u + _Q[1]) * u + _Q[0]
            r = x * p / q
            return _ONE if r > _ONE else (-_ONE if r < -_ONE else r)
        return rational


@compiled(one_thread=True)
def tanh_into(x, out):
    """out = tanh(x) elementwise, x and out flat: the kernels' tanh as a NumPy-callable loop."""
    for i in range(x.shape[0]):
        out[i] = tanh(x[i])
