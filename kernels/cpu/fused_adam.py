"""Adam and AdamW's update of one parameter as one compiled loop (Numba), shared between threads.

The update of minillm/training/optim.py, each element read and written once instead of once per
NumPy operation:

    g = grad + l2 * p                           (Adam's weight decay; l2 = 0 for AdamW)
    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    p = p * shrink - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)      (shrink = 1 - lr wd for AdamW, else 1)
"""
import numpy as np

from .jit import SERIAL_BELOW, compiled, prange, unavailable


def accepts(p, grad, m, v):
    """None for contiguous NumPy float arrays of one dtype, with Numba installed."""
    reason = unavailable(p=p, grad=grad, m=m, v=v)
    if reason:
        return reason
    if not all(a.flags.c_contiguous for a in (p, grad, m, v)):
        return "a non-contiguous array"
    return None


@compiled(serial_below=SERIAL_BELOW)
def _update(p, g, m, v, k):
    b1, b2, c1, c2, lr_bc1, inv_sqrt_bc2, eps, shrink, l2 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]
    for i in prange(p.shape[0]):
        gi = g[i] + l2 * p[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * shrink - lr_bc1 * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


def update(p, grad, m, v, lr, b1, b2, eps, bc1, bc2, shrink, l2):
    """p, m, v updated in place (any shape, contiguous); the scalars as in the module docstring."""
    k = np.array([b1, b2, 1.0 - b1, 1.0 - b2, lr / bc1, 1.0 / np.sqrt(bc2), eps, shrink, l2], dtype=p.dtype)
    _update(p.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), k)
