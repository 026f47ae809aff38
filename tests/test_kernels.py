"""The engine against the lesson: every kernel in kernels/ gives what its twin in minillm/nn/ gives.

Each test runs the same inputs through the lesson (MINILLM_KERNELS=plain) and the engine (auto),
in float64 (agreement to ~1e-12: only the order of additions differs) and float32 (a stated
tolerance), on odd shapes (T = 1, 7, 65; widths that are not a multiple of a vector register;
batch 1) and on non-contiguous inputs. Then the dispatch itself: what it records, the fallbacks,
and that the whole gradient-check suite passes under both settings.
"""
import numpy as np
import pytest

from minillm.gradcheck.suite import model_cases, run_suite
from minillm.gradcheck import TOLERANCE
from minillm.kernels import dispatch
from minillm.kernels.cpu import jit
from minillm.nn import activations, attention, linear, lstm, norm

TOL = {np.float64: 1e-11, np.float32: 2e-5}
SHAPES = [(1, 1, 3), (2, 7, 5), (3, 65, 33)]
NUMBA = pytest.mark.skipif(jit.numba is None, reason="Numba is not installed")


def kernel(name):
    """A pytest parameter for the kernel ``name``; the compiled (Numba) ones skip without Numba."""
    return pytest.param(name, marks=NUMBA) if name.split(".")[-1].startswith(("fused_", "flash_")) else name


def only(monkeypatch, op, name):
    """Make the dispatch offer ``op`` to the kernel ``name`` alone."""
    monkeypatch.setitem(dispatch.KERNELS, op, (name,))


def both(monkeypatch, fn):
    """fn() under the lesson and under the engine: (plain result, auto result)."""
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    plain = fn()
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    fast = fn()
    return plain, fast


def assert_same(plain, fast, dtype, what):
    plain = [plain] if isinstance(plain, np.ndarray) else [p for p in plain if p is not None]
    fast = [fast] if isinstance(fast, np.ndarray) else [f for f in fast if f is not None]
    assert len(plain) == len(fast)
    for n, (a, b) in enumerate(zip(plain, fast)):
        assert b.dtype == a.dtype == dtype, f"{what}[{n}]: dtype {b.dtype} vs {a.dtype}"
        scale = max(1.0, float(np.abs(a).max()))
        err = float(np.abs(a - b).max()) / scale
        assert err <= TOL[dtype], f"{what}[{n}]: engine differs from the lesson by {err:.2e} (bound {TOL[dtype]:g})"


def rand(rng, shape, dtype, strided=False):
    x = rng.standard_normal(shape).astype(dtype)
    if strided:                                   # a non-contiguous view with the same shape
        x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 0, -1)), 0, -1)
    return x


@pytest.mark.parametrize("name", [kernel("cpu.layer_norm"), kernel("cpu.fused_layer_norm")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("strided", [False, True])
def test_layer_norm(monkeypatch, rng, name, dtype, shape, strided):
    only(monkeypatch, "layer_norm", name)
    x, w, b = rand(rng, shape, dtype, strided), rand(rng, shape[-1:], dtype), rand(rng, shape[-1:], dtype)
    dout = rand(rng, shape, dtype)

    def run():
        out, cache = norm.layer_norm_forward(x, w, b)
        return (out,) + tuple(norm.layer_norm_backward(dout, cache))
    assert_same(*both(monkeypatch, run), dtype, name)
    assert dispatch.last("layer_norm").implementation == name


@pytest.mark.parametrize("name", [kernel("cpu.gelu"), kernel("cpu.fused_gelu")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("strided", [False, True])
def test_gelu(monkeypatch, rng, name, dtype, approximate, strided):
    only(monkeypatch, "gelu", name)
    x = rand(rng, (3, 65, 33), dtype, strided) * 4
    x.reshape(-1)[:4] = [-30.0, -9.5, 12.0, 0.0] if not strided else x.reshape(-1)[:4]
    dout = rand(rng, x.shape, dtype)

    def run():
        out, cache = activations.gelu_forward(x, approximate)
        return out, activations.gelu_backward(dout, cache)
    assert_same(*both(monkeypatch, run), dtype, f"{name} {approximate}")
    assert dispatch.last("gelu").implementation == name


@NUMBA
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES + [(4, 1), (5,)])
@pytest.mark.parametrize("strided", [False, True])
def test_softmax_and_log_softmax(monkeypatch, rng, op, dtype, shape, strided):
    forward, backward = getattr(activations, f"{op}_forward"), getattr(activations, f"{op}_backward")
    x = rand(rng, shape, dtype, strided) * 4          # rows whose exps differ a lot
    dout = rand(rng, shape, dtype, strided)

    def run():
        out, cache = forward(x)
        return out, backward(dout, cache)
    assert_same(*both(monkeypatch, run), dtype, f"cpu.fused_softmax {op}")
    assert dispatch.last(op).implementation == "cpu.fused_softmax"


@NUMBA
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_a_nan_of_either_sign_makes_its_row_nan_as_in_the_lesson(monkeypatch, rng, op):
    """The row maximum over integer keys ranks a NaN with its sign bit set below -inf; the exp
    that follows must still carry it into the whole row, as the lesson's np.max does."""
    forward = getattr(activations, f"{op}_forward")
    x = rand(rng, (3, 37), np.float32)
    x[0, 5] = np.nan
    x[1, 20] = -np.float32(np.nan)                            # sign bit set
    assert np.signbit(x[1, 20])
    plain, fast = both(monkeypatch, lambda: forward(x)[0])
    assert np.isnan(fast[:2]).all() and np.isnan(plain[:2]).all()
    np.testing.assert_allclose(fast[2], plain[2], rtol=2e-6, atol=1e-7)


@NUMBA
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_along_another_axis_runs_the_lesson(monkeypatch, rng, op):
    forward, backward = getattr(activations, f"{op}_forward"), getattr(activations, f"{op}_backward")
    x = rand(rng, (3, 4, 5), np.float64)
    out, cache = forward(x, axis=1)
    choice = dispatch.last(op)
    assert choice.implementation == "plain" and "axis 1 is not the last axis" in choice.reason, choice
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    expected, plain_cache = forward(x, axis=1)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(backward(x, cache), backward(x, plain_cache))


@pytest.mark.parametrize("name", [kernel("cpu.gelu"), kernel("cpu.fused_gelu")])
def test_gelu_large_input_in_many_blocks(monkeypatch, rng, name):
    only(monkeypatch, "gelu", name)
    x = rng.standard_normal(200_001).astype(np.float32) * 5         # three 64K blocks and a remainder
    plain, fast = both(monkeypatch, lambda: activations.gelu_forward(x)[0])
    assert_same(plain, fast, np.float32, "gelu blocks")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(monkeypatch, rng, dtype, shape, bias):
    x, w = rand(rng, shape, dtype), rand(rng, (4, shape[-1]), dtype)
    b = rand(rng, (4,), dtype) if bias else None
    dout = rand(rng, shape[:-1] + (4,), dtype)

    def run():
        out, cache = linear.linear_forward(x, w, b)
        return (out,) + tuple(linear.linear_backward(dout, cache))
    assert_same(*both(monkeypatch, run), dtype, "linear")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 50])
def test_embedding_backward(monkeypatch, rng, dtype, n):
    idx = rng.integers(0, 7, (n,))
    dout = rand(rng, (n, 3), dtype)
    cache = linear.EmbeddingCache(idx, (7, 3))
    plain, fast = both(monkeypatch, lambda: linear.embedding_backward(dout, cache, padding_idx=2))
    assert_same(plain, fast, dtype, "embedding")


@pytest.mark.parametrize("name", [kernel("cpu.attention"), kernel("cpu.flash_attention")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T", [1, 7, 65])
@pytest.mark.parametrize("mask", [None, "causal", "bool", "float", "padding", "dropout"])
def test_attention(monkeypatch, rng, name, dtype, T, mask):
    monkeypatch.setitem(dispatch.KERNELS, "scaled_dot_product_attention", (name, "cpu.attention"))
    if name == "cpu.flash_attention":             # small tiles, so T = 65 spans several of them
        from minillm.kernels.cpu import flash_attention
        monkeypatch.setattr(flash_attention, "MIN_SCORES", 1)
        monkeypatch.setattr(flash_attention, "BLOCK_M", 16)
        monkeypatch.setattr(flash_attention, "BLOCK_N", 32)
        monkeypatch.setattr(flash_attention, "DIAGONAL_ROWS", 8)    # diagonal tiles in strips of 8 rows
    B, H, D = 2, 3, 5
    q, k, v = (rand(rng, (B, H, T, D), dtype) for _ in range(3))
    kw = {}
    if mask == "causal":
        kw["is_causal"] = True
    elif mask == "bool":
        m = rng.random((T, T)) > 0.3
        m[:, 0] = True
        kw["attn_mask"] = m
    elif mask == "float":
        kw["attn_mask"] = rand(rng, (B, 1, T, T), dtype)
    elif mask == "padding":
        pad = np.zeros((B, T), dtype=bool)
        pad[1, T // 2:] = True                    # with T = 1, row 1 keeps its only key; T = 7: 4 pads
        pad[0, :] = True                          # batch row 0: every key is padding (output 0)
        kw["key_padding_mask"] = pad
    elif mask == "dropout":
        kw.update(dropout_p=0.25, dropout_mask=rng.random((B, H, T, T)) >= 0.25)
    dout = rand(rng, q.shape, dtype)

    def run():
        out, cache = attention.scaled_dot_product_attention(q, k, v, **kw)
        return (out,) + tuple(attention.scaled_dot_product_attention_backward(dout, cache))
    assert_same(*both(monkeypatch, run), dtype, f"{name} {mask}")
    ran = dispatch.last("scaled_dot_product_attention").implementation
    takes = name == "cpu.attention" or mask in (None, "causal", "padding")     # flash: no attn_mask, no dropout
    assert ran == (name if takes else "cpu.attention"), dispatch.last("scaled_dot_product_attention")


@pytest.mark.parametrize("name", [kernel("cpu.lstm"), kernel("cpu.fused_lstm")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B,T,I,H", [(1, 1, 3, 5), (2, 7, 4, 6), (3, 65, 17, 9)])
@pytest.mark.parametrize("strided", [False, True])
def test_lstm_cell_and_sequence(monkeypatch, rng, name, dtype, B, T, I, H, strided):
    only(monkeypatch, "lstm", name)
    x, h0, c0 = rand(rng, (B, T, I), dtype, strided), rand(rng, (B, H), dtype, strided), rand(rng, (B, H), dtype)
    weights = [rand(rng, s, dtype) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    weights[0][0, 0] = 60.0                        # a saturated gate (e^-z overflows in the one-exp form)
    dy, dh, dc = rand(rng, (B, T, H), dtype), rand(rng, (B, H), dtype), rand(rng, (B, H), dtype)

    def sequence():
        y, h, c, cache = lstm.lstm_forward(x, h0, c0, *weights)
        return (y, h, c) + tuple(lstm.lstm_backward(dy, dh, dc, cache))

    def cell():
        h, c, cache = lstm.lstm_cell_forward(x[:, 0], h0, c0, *weights)
        return (h, c) + tuple(lstm.lstm_cell_backward(dh, dc, cache))
    inputs = [a.copy() for a in (x, h0, c0, dy, dh, dc, *weights)]
    with np.errstate(over="raise"):
        assert_same(*both(monkeypatch, sequence), dtype, name)
        for before, after in zip(inputs, (x, h0, c0, dy, dh, dc, *weights)):
            np.testing.assert_array_equal(before, after)            # no kernel writes into its inputs
        assert dispatch.last("lstm").implementation == name
        assert_same(*both(monkeypatch, cell), dtype, "lstm_cell")


@NUMBA
def test_vector_exp_is_within_two_roundings_of_exp():
    from minillm.kernels.cpu.vector_exp import exp_into
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-86.98, 88.72, 1_000_001), rng.uniform(-1, 1, 100_000)]).astype(np.float32)
    out = np.empty_like(x)
    exp_into(x, out)
    exact = np.exp(x.astype(np.float64))
    rel = np.abs(out.astype(np.float64) - exact) / exact
    assert rel.max() <= 1.2e-7, (float(rel.max()), float(x[rel.argmax()]))      # 2 float32 roundings: 1.19e-7
    edges = np.array([89.0, 1e30, np.inf, -87.5, -1e30, -np.inf, np.nan, 0.0], dtype=np.float32)
    got = np.empty_like(edges)
    exp_into(edges, got)
    np.testing.assert_array_equal(got, [np.inf, np.inf, np.inf, 0, 0, 0, np.nan, 1])
    x64, out64 = x.astype(np.float64), np.empty(x.shape)
    exp_into(x64, out64)                                     # float64: the C library's exp, not the polynomial
    np.testing.assert_allclose(out64, exact, rtol=1e-15)


@NUMBA
def test_vector_max_of_rows_is_numpys_max():
    from minillm.kernels.cpu.vector_max import row_max_into
    rng = np.random.default_rng(0)
    specials = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1e-40, -1e-40, 3.4e38, -3.4e38, 1.0, -1.0]
    rows = [rng.standard_normal((50, 33)) * 1e3, -rng.random((50, 17)), rng.choice(specials, (400, 5))]
    for x in rows:
        for dtype in (np.float32, np.float64):
            x = x.astype(dtype)
            out = np.empty(x.shape[0], dtype=dtype)
            row_max_into(x, out)
            np.testing.assert_array_equal(out, x.max(axis=1))
    x = np.array([[-0.0, -0.0], [1.0, np.nan], [-np.inf, -np.inf]], dtype=np.float32)
    out = np.empty(3, dtype=np.float32)
    row_max_into(x, out)
    np.testing.assert_array_equal(out, [0.0, np.nan, -np.inf])
    assert np.signbit(out[0])                                # -0.0 stays -0.0, as np.max


@NUMBA
def test_cached_kernels_are_stamped_with_every_engine_file():
    """An edit to a helper (exp, the max keys, tanh) must recompile the kernels that inline it."""
    if jit.cache_locator is None:
        pytest.skip("this Numba keeps its cache internals elsewhere")
    from minillm.kernels.cpu import fused_softmax
    locator = jit.cache_locator.from_function(fused_softmax._softmax_rows.serial.py_func, fused_softmax.__file__)
    names = [name for name, *_ in locator.get_source_stamp()]
    assert {"vector_exp.py", "vector_max.py", "fused_lstm.py", "fused_softmax.py"} <= set(names)
    assert jit.cache_locator.from_function(np.max, np.__file__) is None     # other code: Numba's own check


@NUMBA
def test_rational_tanh_is_within_four_roundings_of_tanh():
    from minillm.kernels.cpu import vector_tanh
    x = np.concatenate([np.linspace(-30, 30, 600001), np.logspace(-30, 1, 2000), -np.logspace(-30, 1, 2000)])
    x = x.astype(np.float32)
    exact = np.tanh(x.astype(np.float64))
    err = np.abs(vector_tanh.rational_tanh(x).astype(np.float64) - exact)
    assert np.all(err <= 4e-7 * np.maximum(np.abs(exact), 1e-30) + 1e-45), float((err / np.abs(exact).clip(1e-30)).max())
    assert np.all(np.abs(vector_tanh.rational_tanh(x)) <= 1.0)
    compiled = np.empty_like(x)
    vector_tanh.tanh_into(x, compiled)                       # the kernels' own (fused multiply-adds)
    err = np.abs(compiled.astype(np.float64) - exact)
    assert np.all(err <= 4e-7 * np.maximum(np.abs(exact), 1e-30) + 1e-45), float((err / np.abs(exact).clip(1e-30)).max())
    assert np.all(np.abs(compiled) <= 1.0)


@NUMBA
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B,T,V,padding_idx,layers", [(2, 7, 5, None, 1), (3, 9, 11, 2, 1), (1, 40, 13, None, 1),
                                                      (2, 7, 5, 2, 2), (3, 17, 11, None, 3)])
def test_embedding_folded_into_the_lstm(monkeypatch, dtype, B, T, V, padding_idx, layers):
    """LSTMLM through cpu.embedding_lstm gives the lesson's logits, final state and every gradient
    (every layer's, for 2 and 3 layers)."""
    from minillm import manual_seed
    from minillm.models import LSTMLM, LSTMConfig

    def run():
        manual_seed(0)
        model = LSTMLM(LSTMConfig(vocab_size=V, embed_dim=6, hidden_size=7, num_layers=layers))
        model.embedding.padding_idx = padding_idx
        model = model.double() if dtype == np.float64 else model
        idx = np.random.default_rng(1).integers(0, V, (B, T))
        state = [np.random.default_rng(2).standard_normal((layers, B, 7)).astype(dtype) for _ in range(2)]
        logits = model(idx, state)
        model.zero_grad()
        model.backward(np.random.default_rng(3).standard_normal(logits.shape).astype(dtype))
        return [logits, *model.state, *(p.grad for p in model.parameters()), *model.lstm.dstate0]
    assert_same(*both(monkeypatch, run), dtype, "embedding_lstm")
    assert dispatch.last("embedding_lstm").implementation == "cpu.embedding_lstm"


@NUMBA
def test_embedding_folded_into_the_lstm_passes_a_gradient_check(monkeypatch):
    """Finite differences of the loss in float64 against the folded backward (D E, D^T W_ih, ...)."""
    from minillm.gradcheck import check_module
    from minillm.models import LSTMLM, LSTMConfig
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    model = LSTMLM(LSTMConfig(vocab_size=7, embed_dim=4, hidden_size=5, num_layers=2)).double()
    idx = np.random.default_rng(0).integers(0, 7, (2, 6))
    errors = check_module(model, idx, backward=lambda m, d: (m.backward(d[0]),), max_entries=40)
    assert dispatch.last("embedding_lstm").implementation == "cpu.embedding_lstm"
    assert set(errors) >= {"embedding.weight", "lstm.weight_ih_l0", "lstm.bias_hh_l0", "lstm.weight_hh_l1"}, errors
    assert all(err <= TOLERANCE for err in errors.values()), errors


@NUMBA
def test_embedding_lstm_declines_what_it_does_not_fold(monkeypatch):
    from minillm.models import LSTMLM, LSTMConfig
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    idx = np.zeros((2, 8), dtype=np.int64)
    for config, why in ((LSTMConfig(vocab_size=5, dropout=0.1), "dropout on the embeddings"),
                        (LSTMConfig(vocab_size=16), "vocabulary 16 >= 16 tokens")):
        model = LSTMLM(config)
        model(idx)
        choice = dispatch.last("embedding_lstm")
        assert choice.implementation == "plain" and why in choice.reason, choice
        assert model.cache is None                  # the lesson's backward runs next


def test_plain_mode_runs_the_lesson_and_says_so(monkeypatch, rng):
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    x = rng.standard_normal((2, 4))
    out, cache = norm.layer_norm_forward(x, np.ones(4), np.zeros(4))
    assert type(cache) is norm.LayerNormCache
    assert dispatch.last("layer_norm") == dispatch.Choice("plain", "MINILLM_KERNELS=plain")


def test_ineligible_input_falls_back_with_a_reason(monkeypatch):
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    x = np.ones((2, 4), dtype=np.float16)
    out, cache = norm.layer_norm_forward(x, np.ones(4, np.float16), np.zeros(4, np.float16))
    assert type(cache) is norm.LayerNormCache and out.dtype == np.float16
    choice = dispatch.last("layer_norm")
    assert choice.implementation == "plain" and "float16" in choice.reason


def test_an_unknown_mode_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MINILLM_KERNELS", "fast")
    with pytest.raises(ValueError, match="MINILLM_KERNELS must be one of .*'fast'"):
        norm.layer_norm_forward(np.ones((1, 3)), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("mode", ["plain", "auto"])
def test_gradient_check_suite_passes_under_both_settings(monkeypatch, mode):
    monkeypatch.setenv("MINILLM_KERNELS", mode)
    rows = run_suite(model_cases())
    failed = [(name, opts, err) for name, opts, err in rows if not err <= TOLERANCE]
    assert len(rows) >= 31 and not failed, f"MINILLM_KERNELS={mode}: {failed}"


@NUMBA
def test_serial_twin_of_a_compiled_kernel_gives_the_same_numbers(rng):
    """Inside one_thread_each() (DataParallel's replicas) the serial twin runs: the same results to
    float32 rounding (the two compilations may order a row's sums differently)."""
    from minillm.kernels.cpu import fused_layer_norm
    x, w, b = rand(rng, (33, 17), np.float32), rand(rng, (17,), np.float32), rand(rng, (17,), np.float32)
    dout = rand(rng, (33, 17), np.float32)
    out, cache = fused_layer_norm.forward(x, w, b)
    with jit.one_thread_each():
        assert jit.in_shared_thread()
        out1, cache1 = fused_layer_norm.forward(x, w, b)
        grads1 = cache1.backward(dout)
    np.testing.assert_allclose(out, out1, rtol=2e-6, atol=2e-6)
    for a, b_ in zip(cache.backward(dout), grads1):
        np.testing.assert_allclose(a, b_, rtol=2e-6, atol=2e-6)


@NUMBA
def test_serial_below_runs_small_inputs_on_one_thread(monkeypatch):
    """compiled(serial_below=n): the serial twin for inputs under n elements, the parallel one from n."""
    from minillm.kernels.cpu import fused_adam
    kernel, calls = fused_adam._update, []
    for which in ("serial", "parallel"):
        original = getattr(kernel, which)
        monkeypatch.setattr(kernel, which, lambda *a, _f=original, _w=which: calls.append(_w) or _f(*a))
    for n in (kernel.serial_below - 1, kernel.serial_below):
        p, g, m, v = (np.ones(n, np.float32) for _ in range(4))
        fused_adam.update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, 1.0, 0.0)
    assert calls == ["serial", "parallel"]
    assert kernel.serial_below == jit.SERIAL_BELOW


@NUMBA
@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_on_a_long_sequence_with_its_own_tiles(monkeypatch, rng, causal):
    """T = 600 with the default tiles (three query and key tiles, a ragged last one), split over threads."""
    B, H, T, D = 2, 2, 600, 16
    q, k, v, dout = (rand(rng, (B, H, T, D), np.float32) for _ in range(4))

    def run():
        out, cache = attention.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return (out,) + tuple(attention.scaled_dot_product_attention_backward(dout, cache))
    assert_same(*both(monkeypatch, run), np.float32, "flash attention T=600")
    assert dispatch.last("scaled_dot_product_attention").implementation == "cpu.flash_attention"


@NUMBA
def test_flash_attention_memory_grows_linearly_with_length(monkeypatch, rng):
    """Peak memory of a causal forward and backward, as tracemalloc counts NumPy's arrays: the
    lesson keeps the (T, T) weights of every head, the flash kernel tiles and O(T) arrays only."""
    import tracemalloc

    def run(T, kernels):
        monkeypatch.setenv("MINILLM_KERNELS", kernels)
        q, k, v, dout = (rand(rng, (1, 2, T, 16), np.float32) for _ in range(4))
        out, cache = attention.scaled_dot_product_attention(q, k, v, is_causal=True)
        attention.scaled_dot_product_attention_backward(dout, cache)

    def peak(T, kernels):
        tracemalloc.start()
        try:
            run(T, kernels)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    scores = 2 * 2048 * 2048 * 4                                   # the weights of both heads at T 2048, bytes
    assert peak(2048, "plain") >= scores                           # the measurement sees a T^2 array
    run(1024, "auto")                                              # loading the compiled kernels allocates too
    small, large = peak(1024, "auto"), peak(2048, "auto")
    assert dispatch.last("scaled_dot_product_attention").implementation == "cpu.flash_attention"
    assert large < scores / 4, (large, scores)
    assert large < 2.5 * small, (small, large)                     # twice T: about twice the memory


def test_without_numba_the_numpy_kernels_run_and_the_reason_is_recorded(monkeypatch, rng):
    monkeypatch.setenv("MINILLM_NUMBA", "0")                 # what a machine without Numba sees
    x = rand(rng, (4, 8), np.float32)
    norm.layer_norm_forward(x, np.ones(8, np.float32), np.zeros(8, np.float32))
    assert dispatch.last("layer_norm") == dispatch.Choice("cpu.layer_norm", "eligible")
    assert jit.unavailable(x=x) == "MINILLM_NUMBA=0" and "MINILLM_NUMBA=0" in jit.describe()


@pytest.mark.parametrize("name", [kernel("cpu.fused_adam")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer,weight_decay", [("Adam", 0.0), ("Adam", 0.1), ("AdamW", 0.1)])
def test_adam_update(monkeypatch, rng, name, dtype, optimizer, weight_decay):
    """Three steps of Adam / AdamW on odd shapes: the compiled update against the NumPy one."""
    from minillm.nn.module import Parameter
    from minillm.training import optim
    start = [rand(rng, shape, dtype) for shape in [(3, 65), (7,), (1, 1)]]
    grads = [[rand(rng, a.shape, dtype) for a in start] for _ in range(3)]

    def run():
        params = [Parameter(a.copy()) for a in start]
        opt = getattr(optim, optimizer)(params, lr=1e-2, weight_decay=weight_decay)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.copy()
            opt.step()
        return [p.data for p in params]
    assert_same(*both(monkeypatch, run), dtype, f"{name} {optimizer}")
    assert dispatch.last("adam").implementation == name


@pytest.mark.parametrize("name", [kernel("cpu.fused_cross_entropy")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 7, 5), (3, 65, 33)])
@pytest.mark.parametrize("smoothing,ignored", [(0.0, False), (0.1, True), (0.0, True)])
def test_cross_entropy(monkeypatch, rng, name, dtype, shape, smoothing, ignored):
    from minillm.nn import loss
    only(monkeypatch, "cross_entropy", name)
    logits = rand(rng, shape, dtype, strided=True) * 5
    logits.reshape(-1)[0] = 60.0 if logits.size > 1 else logits.reshape(-1)[0]     # one far-off logit
    targets = rng.integers(0, shape[-1], shape[:-1])
    if ignored:
        targets.reshape(-1)[::2] = -100

    def run():
        value, cache = loss.cross_entropy_forward(logits, targets, -100, smoothing)
        return np.asarray(value)[None], loss.cross_entropy_backward(cache, 0.5)
    assert_same(*both(monkeypatch, run), dtype, f"{name} eps={smoothing}")
    assert dispatch.last("cross_entropy").implementation == name
