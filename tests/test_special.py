"""erfc (minillm/nn/special.py): accuracy of the float32 formula, the exact float64 path, the
coefficients being the documented fit, and what it buys the exact GELU in the left tail."""
import math

import numpy as np
import pytest

from minillm.nn.activations import gelu_backward, gelu_forward
from minillm.nn.special import ERFC_COEFFS, erfc, fit_erfc_coefficients


def exact(x):
    return np.array([math.erfc(float(v)) for v in np.ravel(x)]).reshape(np.shape(x))


def grid():
    """Dense on [-10, 10] plus tiny and huge magnitudes of both signs, as float32."""
    mags = np.geomspace(1e-30, 10.0, 20_000)
    return np.concatenate([np.linspace(-10.0, 10.0, 200_001), mags, -mags]).astype(np.float32)


def test_float32_erfc_relative_error_is_within_the_documented_bounds():
    x = grid()
    got, ref = erfc(x).astype(np.float64), exact(x)
    assert erfc(x).dtype == np.float32
    normal = ref >= np.finfo(np.float32).tiny                      # erfc(x) is a normal float32 there
    rel = np.abs(got - ref)[normal] / ref[normal]
    for limit, bound in ((2, 1e-6), (4, 2e-6), (np.inf, 1e-5)):
        within = np.abs(x[normal]) <= limit
        assert rel[within].max() <= bound, (limit, rel[within].max())
    assert np.all(np.abs(got - ref)[~normal] <= 2 * np.finfo(np.float32).tiny)   # underflows to ~0


def test_float32_erfc_special_values():
    x = np.array([0.0, np.inf, -np.inf, np.nan, 30.0, -30.0], dtype=np.float32)
    got = erfc(x)
    np.testing.assert_allclose(got[:3], [1.0, 0.0, 2.0], rtol=3e-7)         # erfc(0): within 2 float32 ulps
    assert np.isnan(got[3])
    assert got[4] == 0.0 and got[5] == 2.0


def test_float32_erfc_keeps_shape_and_handles_non_contiguous_input():
    x = np.linspace(-4, 4, 6 * 7 * 5, dtype=np.float32).reshape(6, 7, 5).transpose(2, 0, 1)
    got = erfc(x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, exact(x), rtol=1e-6)


def test_float64_erfc_is_exact():
    x = np.linspace(-6, 6, 1001)
    got = erfc(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, exact(x), rtol=1e-15, atol=0)


def test_coefficients_are_the_documented_least_squares_fit():
    fitted = fit_erfc_coefficients(9)
    np.testing.assert_allclose(ERFC_COEFFS, fitted, rtol=1e-8, atol=1e-9)


def test_exact_gelu_float32_is_accurate_in_the_left_tail():
    """Phi(x) = erfc(-x/sqrt2)/2 keeps its relative accuracy where (1 + erf(x/sqrt2))/2 cancels:
    at x = -5 the erf form keeps about one digit in float32, the erfc form about six."""
    x = np.linspace(-9, 9, 36_001).astype(np.float32)
    out, cache = gelu_forward(x, "none")
    ref = x.astype(np.float64) * 0.5 * exact(-x.astype(np.float64) / math.sqrt(2))
    big = np.abs(ref) > 1e-30
    rel = np.abs(out - ref)[big] / np.abs(ref[big])
    assert rel.max() <= 2e-5, rel.max()
    erf_form = x * 0.5 * (np.float32(1) + np.float32(1) - erfc(x / np.float32(math.sqrt(2))))   # 1 + erf, float32
    at_minus_5 = np.argmin(np.abs(x + 5))
    assert abs(erf_form[at_minus_5] - ref[at_minus_5]) / abs(ref[at_minus_5]) > 1e-3   # the cancellation is real
    dx = gelu_backward(np.ones_like(x), cache)
    dref = 0.5 * exact(-x.astype(np.float64) / math.sqrt(2)) + x * np.exp(-0.5 * x.astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(dx, dref, rtol=2e-5, atol=1e-7)


def test_exact_gelu_matches_torch_in_float32():
    """Our float32 GELU against torch's GELU of the same inputs computed in float64. (torch's own
    float32 GELU is not the reference: its AVX-512 erf is off by up to 1e-3 relative near x = -3.5.)"""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32) * 3
    out, cache = gelu_forward(x, "none")
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    dx = gelu_backward(dout, cache)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    ty = torch.nn.functional.gelu(tx)
    ty.backward(torch.from_numpy(dout.astype(np.float64)))
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_exact_gelu_benchmark_compares_the_same_function():
    """benchmarks/exact_gelu.py times the erf-based variants against ours: they must compute the
    same GELU and gradient, or the timing compares different work."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parent.parent / "benchmarks" / "exact_gelu.py"
    spec = importlib.util.spec_from_file_location("exact_gelu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    x = np.random.default_rng(0).standard_normal((8, 300)).astype(np.float32) * 2
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    ways = bench.variants()
    out, cache = ways["minillm erfc"][0](x, "none")
    dx = ways["minillm erfc"][1](dout, cache)
    for name, (fwd, bwd) in ways.items():
        o, c = fwd(x, "none")
        np.testing.assert_allclose(o, out, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(bwd(dout, c), dx, rtol=1e-5, atol=1e-6, err_msg=name)
