"""kernels/cpu/batched_matmul.py: one BLAS call for a batch of products, equal to np.matmul."""
import numpy as np
import pytest

from minillm.kernels import dispatch
from minillm.kernels.cpu import batched_matmul
from minillm.nn import attention

TOL = {np.float64: 1e-12, np.float32: 2e-6}
BATCHED = pytest.mark.skipif(not batched_matmul.available(), reason="NumPy's BLAS has no batch routine")


def heads(rng, B, T, H, D, dtype):
    """A (B, H, T, D) view of a (B, T, H, D) array, as multi-head attention splits its heads:
    heads D apart, batch rows T H D apart (no single stride over the batch)."""
    return rng.standard_normal((B, T, H, D)).astype(dtype).transpose(0, 2, 1, 3)


def layouts(rng, dtype):
    """(name, a, b) pairs the batch routine takes, every product above its small-matrix size."""
    a = rng.standard_normal((2, 3, 203, 67)).astype(dtype)
    b = rng.standard_normal((2, 3, 67, 157)).astype(dtype)
    q, k = heads(rng, 3, 130, 4, 64, dtype), heads(rng, 3, 130, 4, 64, dtype)
    yield "contiguous", a, b
    yield "a transposed", np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2), b
    yield "b transposed", a, np.ascontiguousarray(b.swapaxes(-1, -2)).swapaxes(-1, -2)
    yield "3-d", a[0], b[0]
    yield "rows of a skipped", a[:, :, ::2], b
    yield "a slice of the batch", a[:, 1:], b[:, 1:]
    yield "heads q k^T", q, k.swapaxes(-1, -2)
    yield "heads s v", np.ascontiguousarray(q @ k.swapaxes(-1, -2)), k


def relative_error(x, y):
    return float(np.abs(x - y).max()) / max(1.0, float(np.abs(y).max()))


@BATCHED
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_products_equal_numpys_matmul(monkeypatch, rng, dtype):
    calls = []
    real = batched_matmul._routine
    monkeypatch.setattr(batched_matmul, "_routine", lambda d: calls.append(d) or real(d))
    for name, a, b in layouts(rng, dtype):
        calls.clear()
        out = batched_matmul.matmul(a, b)
        assert calls, f"{name}: went to np.matmul"
        assert out.dtype == dtype and out.shape == np.matmul(a, b).shape, name
        assert out.flags.c_contiguous, name
        err = relative_error(out, np.matmul(a, b))
        assert err <= TOL[dtype], f"{name}: differs from np.matmul by {err:.2e}"


@pytest.mark.parametrize("case", ["small", "broadcast", "mixed dtypes", "integers", "a side of 1",
                                  "negative stride", "2-d", "empty"])
def test_what_the_routine_cannot_take_goes_to_numpys_matmul(rng, case):
    a = rng.standard_normal((2, 110, 100)).astype(np.float32)
    b = rng.standard_normal((2, 100, 120)).astype(np.float32)
    if case == "small":                       # 8 x 8 x 8: OpenBLAS's small-matrix path
        a, b = a[:, :8, :8], b[:, :8, :8]
    elif case == "broadcast":
        b = b[:1]
    elif case == "mixed dtypes":
        b = b.astype(np.float64)
    elif case == "integers":
        a, b = (a * 10).astype(np.int64), (b * 10).astype(np.int64)
    elif case == "a side of 1":
        a = a[:, :1]
    elif case == "negative stride":
        a = a[:, ::-1]
    elif case == "2-d":
        a, b = a[0], b[0]
    elif case == "empty":
        a, b = a[:0], b[:0]
    out = batched_matmul.matmul(a, b)
    expected = np.matmul(a, b)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert out.size == 0 or relative_error(out, expected) <= 1e-6


@BATCHED
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
def test_cpu_attention_with_batched_products_equals_the_lesson(monkeypatch, rng, dtype, causal):
    monkeypatch.setitem(dispatch.KERNELS, "scaled_dot_product_attention", ("cpu.attention",))
    q, k, v, dout = (heads(rng, 2, 130, 3, 64, dtype) for _ in range(4))
    results = {}
    for mode in ("plain", "auto"):
        monkeypatch.setenv("MINILLM_KERNELS", mode)
        out, cache = attention.scaled_dot_product_attention(q, k, v, is_causal=causal)
        results[mode] = (out,) + tuple(attention.scaled_dot_product_attention_backward(dout, cache))
    assert dispatch.last("scaled_dot_product_attention").implementation == "cpu.attention"
    for n, (lesson, engine) in enumerate(zip(results["plain"], results["auto"])):
        err = relative_error(engine, lesson)
        assert engine.dtype == dtype and err <= {np.float64: 1e-11, np.float32: 2e-5}[dtype], f"output {n}: {err:.2e}"


def test_an_exported_batch_routine_passes_its_own_check():
    """Where NumPy's OpenBLAS exports the routine, its first product agreed with np.matmul (a
    failed check would silently send every product to np.matmul)."""
    found = batched_matmul._find_routines()
    if not found:
        pytest.skip("NumPy's BLAS has no batch routine")
    for dtype in found:
        assert batched_matmul.available(dtype), f"the {dtype} batch routine disagreed with np.matmul"
