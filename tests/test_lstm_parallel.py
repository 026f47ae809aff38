"""kernels/cpu/lstm_parallel.py (the LSTM's units split between threads) and barrier.py."""
import threading

import numpy as np
import pytest

from minillm.kernels import dispatch
from minillm.kernels.cpu import jit, lstm_parallel, openblas
from minillm.nn import lstm

TOL = {np.float64: 1e-11, np.float32: 2e-5}
PARTS = pytest.mark.skipif(jit.numba is None or jit.threads() < 2 or openblas.spin_exponent() is None,
                           reason="needs Numba, two threads and NumPy's OpenBLAS")


@pytest.fixture
def in_parts(monkeypatch):
    """Let lstm_parallel split the units whatever OPENBLAS_THREAD_TIMEOUT NumPy's OpenBLAS read
    (pytest loads NumPy before minillm, so minillm's setting does not reach it here)."""
    monkeypatch.setattr(openblas, "spin_exponent", lambda: 20)
    monkeypatch.setitem(dispatch.KERNELS, "lstm", ("cpu.fused_lstm",))


def relative_error(a, b):
    return float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max()))


def lesson_and_engine(monkeypatch, run):
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    lesson = run()
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    return lesson, run()


@PARTS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B,T,I,H", [(1, 1, 4, 64), (3, 7, 5, 64), (2, 65, 17, 96)])
def test_lstm_in_parts_equals_the_lesson(monkeypatch, rng, in_parts, dtype, B, T, I, H):
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in ((B, T, I), (B, H), (B, H)))
    weights = [(rng.standard_normal(s) * 0.3).astype(dtype) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    dy, dh, dc = (rng.standard_normal(s).astype(dtype) for s in ((B, T, H), (B, H), (B, H)))
    caches = []

    def run():
        y, h, c, cache = lstm.lstm_forward(x, h0, c0, *weights)
        caches.append(cache)
        return (y, h, c) + tuple(lstm.lstm_backward(dy, dh, dc, cache))
    lesson, engine = lesson_and_engine(monkeypatch, run)
    assert caches[-1].parts == 2, "the steps did not run in two parts"
    for n, (a, b) in enumerate(zip(engine, lesson)):
        assert a.dtype == dtype and a.shape == b.shape
        assert relative_error(a, b) <= TOL[dtype], f"output {n}: {relative_error(a, b):.2e}"


@PARTS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layers", [1, 2])
def test_embedding_lstm_in_parts_equals_the_lesson(monkeypatch, in_parts, dtype, layers):
    from minillm import manual_seed
    from minillm.models import LSTMLM, LSTMConfig

    def run():
        manual_seed(0)
        model = LSTMLM(LSTMConfig(vocab_size=11, embed_dim=6, hidden_size=64, num_layers=layers))
        model = model.double() if dtype == np.float64 else model
        idx = np.random.default_rng(1).integers(0, 11, (3, 9))
        logits = model(idx)
        model.zero_grad()
        model.backward(np.random.default_rng(3).standard_normal(logits.shape).astype(dtype))
        return [logits, *model.state, *(p.grad for p in model.parameters()), *model.lstm.dstate0]
    lesson, engine = lesson_and_engine(monkeypatch, run)
    assert dispatch.last("embedding_lstm").implementation == "cpu.embedding_lstm"
    for n, (a, b) in enumerate(zip(engine, lesson)):
        assert relative_error(a, b) <= TOL[dtype], f"output {n}: {relative_error(a, b):.2e}"


@PARTS
@pytest.mark.parametrize("fails", ["forward", "backward"])
def test_a_part_that_never_arrives_falls_back_to_one_thread(monkeypatch, rng, in_parts, fails):
    """When a thread does not come to the barrier, the others give up and the step runs on one
    thread: the same numbers, a warning, no hang."""
    B, T, I, H = 2, 5, 3, 64
    x, h0, c0 = (rng.standard_normal(s) for s in ((B, T, I), (B, H), (B, H)))
    weights = [rng.standard_normal(s) * 0.3 for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    dy = rng.standard_normal((B, T, H))
    zeros = np.zeros((B, H))

    def run():
        y, h, c, cache = lstm.lstm_forward(x, h0, c0, *weights)
        return (y, h, c) + tuple(lstm.lstm_backward(dy, zeros, zeros, cache))
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    lesson = run()
    monkeypatch.setenv("MINILLM_KERNELS", "auto")
    def only_part_0(P, part):                 # the other thread never starts
        return part(0)

    def never_arrives():
        monkeypatch.setattr(lstm_parallel, "WAIT_LIMIT", 10_000)
        monkeypatch.setattr(lstm_parallel, "_run", only_part_0)
    if fails == "forward":
        never_arrives()
        with pytest.warns(UserWarning, match="did not arrive"):
            engine = run()
    else:
        y, h, c, cache = lstm.lstm_forward(x, h0, c0, *weights)
        assert cache.parts == 2
        never_arrives()
        with pytest.warns(UserWarning, match="did not arrive"):
            engine = (y, h, c) + tuple(lstm.lstm_backward(dy, zeros, zeros, cache))
    for n, (a, b) in enumerate(zip(engine, lesson)):
        assert relative_error(a, b) <= 1e-11, f"output {n}: {relative_error(a, b):.2e}"


def test_the_units_stay_on_one_thread_where_splitting_does_not_pay(monkeypatch):
    monkeypatch.setattr(openblas, "spin_exponent", lambda: 28)
    assert lstm_parallel.parts(256, np.float32) == 1       # OpenBLAS's threads spin 0.1 s: no split
    monkeypatch.setattr(openblas, "spin_exponent", lambda: 20)
    assert lstm_parallel.parts(40, np.float32) == 1        # 20 units a part: below MIN_UNITS
    seen = []
    thread = threading.Thread(target=lambda: seen.append(lstm_parallel.parts(256, np.float32)))
    thread.start()
    thread.join()
    assert seen == [1]                                      # a DataParallel replica's thread
    if jit.numba is not None and jit.threads() >= 2 and openblas._open() is not None:
        assert lstm_parallel.parts(256, np.float32) == 2


def test_part_order_puts_each_parts_gate_rows_together():
    order = lstm_parallel.part_order(4, 2)                  # H 4, two parts of 2 units
    # part 0: i, f, g, o rows of units 0, 1; part 1: those of units 2, 3
    assert order.tolist() == [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]
    rows = np.arange(16.0)[:, None]
    assert np.array_equal(lstm_parallel.in_w_hh_order(rows[order], order), rows)


@pytest.mark.skipif(jit.numba is None, reason="Numba is not installed")
def test_barrier_lets_no_thread_pass_before_all_arrive():
    """Two threads run a compiled loop of 2000 steps; at step s each reads the other's counter
    after the meeting: it must already show step s (nobody passed early)."""
    from minillm.kernels.cpu.barrier import meet

    @jit.numba.njit(nogil=True)
    def loop(p, steps, done, seen, counter):
        other = 1 - p
        for s in range(1, steps + 1):
            done[p] = s
            if not meet(counter, 2 * s, 1 << 30):
                return False
            seen[p, s - 1] = done[other]
        return True

    steps = 2000
    done, seen, counter = np.zeros(2, np.int64), np.zeros((2, steps), np.int64), np.zeros(1, np.int64)
    results = []
    thread = threading.Thread(target=lambda: results.append(loop(1, steps, done, seen, counter)))
    thread.start()
    results.append(loop(0, steps, done, seen, counter))
    thread.join()
    assert results == [True, True]
    assert np.all(seen >= np.arange(1, steps + 1)), "a thread left a meeting before the other arrived"
    assert counter[0] == 2 * steps


@pytest.mark.skipif(jit.numba is None, reason="Numba is not installed")
def test_barrier_gives_up_on_a_thread_that_never_comes():
    from minillm.kernels.cpu.barrier import meet

    @jit.numba.njit(nogil=True)
    def alone(counter):
        return meet(counter, 2, 10_000)

    counter = np.zeros(1, np.int64)
    assert not alone(counter)
    assert counter[0] < 0                                   # marked failed for the others


@PARTS
def test_auto_threads_leaves_the_cores_to_an_lstm_that_splits_its_units(monkeypatch, in_parts):
    """--threads auto: one replica for an LSTM LM whose units split between the cores (two replicas
    would each run its LSTM on one core), one per core for a GPT or under MINILLM_KERNELS=plain."""
    from minillm.models import GPT, LSTMLM, GPTConfig, LSTMConfig
    from minillm.training.parallel import auto_threads
    lstm_lm = LSTMLM(LSTMConfig(vocab_size=11, embed_dim=8, hidden_size=64))
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    assert auto_threads(16, 2, lstm_lm) == 1
    assert auto_threads(16, 2, gpt) == 2
    monkeypatch.setenv("MINILLM_KERNELS", "plain")
    assert auto_threads(16, 2, lstm_lm) == 2
