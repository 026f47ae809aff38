"""The CUDA kernel against a float64 NumPy reference (needs a GPU; skipped elsewhere).

Tolerances: forward max abs error <= 1e-4, gradients <= 1e-3 relative
(max abs error over max abs value of the reference; where the reference gradient is
identically zero, max abs error <= 1e-5), for many lengths, head sizes and masks.
"""
import numpy as np
import pytest

import minillm
from minillm import backend
from minillm.nn import attention
from minillm.kernels import dispatch

pytestmark = pytest.mark.gpu

LENGTHS = [1, 7, 64, 65, 127, 1000, 2048]


def _reference(q, k, v, do, causal, kpm):
    """Plain formula in float64 on the CPU: out, dq, dk, dv."""
    out, cache = attention.scaled_dot_product_attention(q, k, v, is_causal=causal, key_padding_mask=kpm)
    return (out,) + attention.scaled_dot_product_attention_backward(do, cache)


def _run(T, S, D, causal, pad, seed=0):
    import cupy
    rng = np.random.default_rng(seed)
    B, H = 2, 3
    q = rng.standard_normal((B, H, T, D))
    k, v = rng.standard_normal((B, H, S, D)), rng.standard_normal((B, H, S, D))
    do = rng.standard_normal((B, H, T, D))
    kpm = None
    if pad:
        kpm = np.zeros((B, S), dtype=bool)
        kpm[1, S - max(1, S // 3):] = True            # the second sequence ends in padding
    ref = _reference(q, k, v, do, causal, kpm)
    g = [cupy.asarray(a, dtype=cupy.float32) for a in (q, k, v, do)]
    gk = None if kpm is None else cupy.asarray(kpm)
    out, cache = attention.scaled_dot_product_attention(g[0], g[1], g[2], is_causal=causal, key_padding_mask=gk)
    assert dispatch.last("scaled_dot_product_attention").implementation == "cuda.attention"
    got = (out,) + attention.scaled_dot_product_attention_backward(g[3], cache)
    got = [backend.to_numpy(a).astype(np.float64) for a in got]
    fwd_err = np.abs(got[0] - ref[0]).max()
    assert fwd_err <= 1e-4, f"forward max abs error {fwd_err:.2e} (T={T}, S={S}, D={D})"
    for name, a, b in zip(("dq", "dk", "dv"), got[1:], ref[1:]):
        # Relative to the largest reference entry. When the true gradient is zero (T = S = 1:
        # softmax over one key has no slope), float32 rounding is all there is: compare absolutely.
        scale = np.abs(b).max()
        err = np.abs(a - b).max() / (scale if scale > 1e-6 else 1e-2)
        assert err <= 1e-3, f"{name} relative error {err:.2e} (T={T}, S={S}, D={D}, causal={causal}, pad={pad})"


@pytest.mark.parametrize("D", [32, 64, 128])
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("pad", [False, True])
def test_self_attention_matches_reference(T, D, causal, pad):
    minillm.use("cupy")
    _run(T, T, D, causal, pad)


@pytest.mark.parametrize("T,S", [(1, 7), (7, 65), (65, 1000), (127, 64), (1000, 127), (2048, 300)])
@pytest.mark.parametrize("D", [32, 64, 128])
@pytest.mark.parametrize("pad", [False, True])
def test_cross_attention_matches_reference(T, S, D, pad):
    minillm.use("cupy")
    _run(T, S, D, False, pad)


@pytest.mark.parametrize("T,S,D,causal", [(65, 65, 64, True), (1000, 1000, 128, False), (127, 300, 32, False),
                                          (2048, 2048, 64, False)])
def test_two_pass_backward_matches_reference(monkeypatch, T, S, D, causal):
    """The deterministic two-kernel dQ (MINILLM_ATTN_DQ=two_pass) against the same reference."""
    monkeypatch.setenv("MINILLM_ATTN_DQ", "two_pass")
    minillm.use("cupy")
    _run(T, S, D, causal, True)


@pytest.mark.parametrize("D", [16, 48, 80])
def test_odd_head_sizes_are_padded(D):
    minillm.use("cupy")
    _run(65, 65, D, True, True)


def test_fully_masked_row_gives_zero():
    """A query whose keys are all padding gets 0 output and 0 gradient, as on the NumPy path."""
    import cupy
    minillm.use("cupy")
    q = cupy.random.standard_normal((1, 1, 5, 32), dtype=cupy.float32)
    kpm = cupy.ones((1, 5), dtype=bool)
    out, cache = attention.scaled_dot_product_attention(q, q, q, key_padding_mask=kpm)
    dq, dk, dv = attention.scaled_dot_product_attention_backward(cupy.ones_like(out), cache)
    for a in (out, dq, dk, dv):
        assert bool(cupy.isfinite(a).all()) and float(abs(a).max()) == 0.0


def test_dispatch_and_switch(monkeypatch):
    """Eligible calls take the kernel; MINILLM_KERNELS=plain, float64 or a general mask take the formula."""
    import cupy
    minillm.use("cupy")
    q = cupy.random.standard_normal((1, 2, 8, 32), dtype=cupy.float32)
    attention.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert dispatch.last("scaled_dot_product_attention").implementation == "cuda.attention"
    attention.scaled_dot_product_attention(q.astype(cupy.float64), q.astype(cupy.float64), q.astype(cupy.float64))
    assert dispatch.last("scaled_dot_product_attention").implementation == "plain"
    attention.scaled_dot_product_attention(q, q, q, attn_mask=cupy.ones((8, 8), dtype=bool))
    assert dispatch.last("scaled_dot_product_attention").implementation == "plain"
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    attention.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert dispatch.last("scaled_dot_product_attention").implementation == "plain"


def test_bad_mask_shape_same_error_as_numpy():
    import cupy
    minillm.use("cupy")
    q = cupy.random.standard_normal((2, 2, 8, 32), dtype=cupy.float32)
    with pytest.raises(ValueError, match="key_padding_mask"):
        attention.scaled_dot_product_attention(q, q, q, key_padding_mask=cupy.zeros((2, 7), dtype=bool))
