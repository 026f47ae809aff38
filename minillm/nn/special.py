"""The complementary error function, which NumPy lacks (the exact GELU needs it).

    erfc(x) = 1 - erf(x) = 2/sqrt(pi) * integral from x to infinity of exp(-s^2) ds
    Phi(x)  = erfc(-x / sqrt 2) / 2          the standard normal CDF, used by GELU

Why erfc and not erf: GELU's Phi(x) = (1 + erf(x/sqrt 2)) / 2 cancels for x < 0 (1 + erf is
1 - 0.99999... at x = -5, which float32 keeps to one or two digits), while erfc(-x/sqrt 2) / 2
stays accurate to the last digits in the whole left tail.

float32 (training): for u = |x| >= 0,

    erfc(u) = t * exp(-u^2 + P(t)),   t = 1 / (1 + u/2),

with P a degree-9 polynomial: the form of Numerical Recipes' erfcc (Press et al., sec. 6.2),
coefficients fitted here (see fit_erfc_coefficients). The exp(-u^2) carries the steep decay, so P
only has to follow a slowly varying remainder on t in (1/6, 1]; negative x use
erfc(x) = 2 - erfc(-x).
Relative error against math.erfc (tests/test_special.py): <= 1e-6 for |x| <= 2, <= 2e-6 for
|x| <= 4, <= 1e-5 wherever erfc(x) is a normal float32 (about 10-100 float32 ulps in the far
tail, where the float32 rounding of -u^2 dominates; PyTorch's erfc is within 1 ulp).
float64 (gradient checks) and other dtypes: Python's math.erfc element by element, exact.
CuPy: cupyx.scipy.special.erfc.
"""
import math

import numpy as np

from .. import backend

# P(t) = sum_k ERFC_COEFFS[k] t^k: fit_erfc_coefficients(9), rounded to 10 digits.
ERFC_COEFFS = (-1.265469721, 0.9991116732, 0.3822001259, 0.05736849008, -0.07006472215,
               0.06187866266, -0.8771431819, 1.298993133, -0.7437979252, 0.1569235301)


def fit_erfc_coefficients(degree=9, u_max=10.0, n=4000):
    """Least-squares fit of P(t) = log(erfc(u) / t) + u^2, t = 1 / (1 + u/2), in float64 on n
    Chebyshev-spaced points u in [0, u_max] (erfc(10) ~ 2e-45 is float32's smallest).
    Returns the coefficients, lowest power first."""
    u = (np.cos(np.linspace(0.0, np.pi, n)) + 1.0) / 2.0 * u_max
    t = 1.0 / (1.0 + 0.5 * u)
    target = np.array([math.log(math.erfc(v)) for v in u]) - np.log(t) + u * u
    return np.polynomial.polynomial.polyfit(t, target, degree)


def erfc(x):
    """Elementwise erfc(x). x: (...) float -> (...) of x's dtype."""
    xp = backend.get_array_module(x)
    if xp is not np:
        from cupyx.scipy.special import erfc as cupy_erfc
        return cupy_erfc(x)
    if x.dtype != np.float32:
        return np.frompyfunc(math.erfc, 1, 1)(x).astype(x.dtype)
    return erfc_float32(x)


def erfc_float32(x):
    """erfc(x) = t exp(-u^2 + P(t)), u = |x|, t = 1 / (1 + u/2), for x >= 0; 2 - erfc(-x) for x < 0.

    x: (...) float32 -> (...) float32, every constant a float32 so nothing is promoted.
    """
    f32 = np.float32
    u = np.abs(x)
    t = f32(1.0) / (f32(1.0) + f32(0.5) * u)
    p = np.full_like(x, f32(ERFC_COEFFS[-1]))
    for c in ERFC_COEFFS[-2::-1]:                         # Horner's rule: p = P(t)
        p = p * t + f32(c)
    with np.errstate(under="ignore"):                     # u > ~9.4: erfc is below float32's range
        y = t * np.exp(-u * u + p)
    return np.where(x < 0, f32(2.0) - y, y)
