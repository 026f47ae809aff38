"""DataParallel: the shards' forward and backward equal the whole batch's, on every model."""
import numpy as np
import pytest

import minillm
from minillm.gradcheck import check_module
from minillm.models import GPT, LSTMLM, BertForMaskedLM, BertForSequenceClassification, GPTConfig, LSTMConfig
from minillm.nn import CrossEntropyLoss
from minillm.training.parallel import DataParallel, blas_threads
from test_models import TINY_BERT, TINY_GPT, TINY_MODELS, assert_ok, ids, only_ids

PADDING = np.array([[0] * 6, [0] * 4 + [1] * 2, [0] * 6, [0] * 5 + [1], [0] * 2 + [1] * 4], bool)
MODELS = pytest.mark.parametrize("make,kw", [            # batch 5: shards of 3 + 2, or 2 + 2 + 1
    (lambda: GPT(TINY_GPT), {}),
    (lambda: BertForMaskedLM(TINY_BERT), {"segments": ids(5, 6, seed=3, high=2), "key_padding_mask": PADDING}),
    (lambda: BertForSequenceClassification(TINY_BERT), {"key_padding_mask": PADDING}),
    (lambda: LSTMLM(LSTMConfig(11, 5, 6, 2)), {}),
], ids=["gpt", "bert-mlm", "bert-cls", "lstm-lm"])
needs_blas = pytest.mark.skipif(not blas_threads.available(), reason="NumPy's BLAS is not an OpenBLAS minillm can set")


def grads_after(net, model, x, kw, dout):
    """Output of net(x) and the model's gradients after net.backward(dout)."""
    model.zero_grad()
    out = net(x, **kw)
    net.backward(dout)
    return out, {name: p.grad.copy() for name, p in model.named_parameters()}


@needs_blas
@MODELS
@pytest.mark.parametrize("n", [1, 2, 3])
def test_shards_give_the_whole_batch_output_and_gradients(make, kw, n):
    model = make().double()
    x = ids(5, 6)
    dout = np.random.default_rng(7).standard_normal(model(x, **kw).shape)
    want_out, want = grads_after(model, model, x, kw, dout)
    got_out, got = grads_after(DataParallel(model, n), model, x, kw, dout)
    np.testing.assert_allclose(got_out, want_out, rtol=0, atol=1e-12)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-13, err_msg=name)


@needs_blas
@TINY_MODELS
def test_data_parallel_gradcheck(make, kw):
    """The all-reduce is a hand-written backward too: check it against finite differences."""
    assert_ok(check_module(DataParallel(make().double(), 2), ids(2, 6), backward=only_ids, max_entries=30, **kw))


@needs_blas
def test_gradients_accumulate_and_the_optimizer_update_reaches_every_replica():
    model = GPT(TINY_GPT).double()
    net = DataParallel(model, 2)
    x, dout = ids(4, 6), np.random.default_rng(1).standard_normal((4, 6, 11))
    _, once = grads_after(net, model, x, {}, dout)
    net(x)
    net.backward(dout)                          # no zero_grad: a second share adds up, as in PyTorch
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[name], rtol=1e-12, err_msg=name)
    for p in model.parameters():
        p.data -= 0.1 * p.grad                  # an optimizer's in-place step
    np.testing.assert_allclose(net(x), model(x), rtol=0, atol=1e-12)


@needs_blas
def test_float32_training_through_shards_follows_training_without():
    from minillm.training.optim import AdamW

    def train(threads):
        minillm.manual_seed(0)
        model = GPT(TINY_GPT)
        net, loss_fn = DataParallel(model, threads), CrossEntropyLoss()
        opt = AdamW(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(20):                   # one batch, again and again: its loss must fall
            logits = net(ids(4, 8))
            losses.append(float(loss_fn(logits, ids(4, 8, seed=1))))
            model.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
        assert logits.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in model.parameters())
        return np.array(losses)
    alone, sharded = train(1), train(2)
    np.testing.assert_allclose(sharded, alone, rtol=1e-5)        # float32 rounding of the split sums only
    assert sharded[-1] < sharded[0] - 0.5


@needs_blas
def test_dropout_masks_are_reproducible_and_follow_the_seed():
    def run(seed):
        minillm.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.3)).double()
        net = DataParallel(model, 3)
        minillm.manual_seed(seed)
        x = np.repeat(ids(1, 6), 5, axis=0)      # five equal rows: only the dropout masks tell them apart
        return grads_after(net, model, x, {}, np.ones((5, 6, 11)))
    (out_a, a), (out_b, b), (out_c, _) = run(1), run(1), run(2)
    np.testing.assert_array_equal(out_a, out_b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.allclose(out_a, out_c)
    # each shard drew its own masks (shards: rows 0-1, 2-3, 4): equal rows, different outputs
    assert not np.allclose(out_a[0], out_a[2]) and not np.allclose(out_a[2], out_a[4])


@needs_blas
def test_blas_threads_are_restored():
    before = blas_threads.current()
    net = DataParallel(GPT(TINY_GPT), 2)
    net.backward(np.ones_like(net(ids(2, 6))))
    assert blas_threads.current() == before
    with blas_threads(1):
        assert blas_threads.current() == 1
    assert blas_threads.current() == before


@pytest.mark.parametrize("n", [0, -1, 2.0, "2", True])
def test_bad_thread_count(n):
    with pytest.raises(ValueError, match=f"n_threads must be an integer >= 1, got {n!r}"):
        DataParallel(GPT(TINY_GPT), n)


@needs_blas
def test_bad_batches():
    net = DataParallel(LSTMLM(LSTMConfig(11, 5, 6, 1)), 3)
    with pytest.raises(ValueError, match="at least n_threads=3 rows, got 2"):
        net(ids(2, 6))
    state = (np.zeros((1, 4, 6)), np.zeros((1, 4, 6)))
    with pytest.raises(ValueError, match="argument 0 must be an array with the batch \\(4\\) on axis 0, or None; got tuple"):
        net(ids(4, 6), state)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        net.backward(np.ones((4, 6, 11)))


def test_without_a_settable_blas_more_than_one_thread_is_refused(monkeypatch):
    from minillm.kernels.cpu import threads
    monkeypatch.setitem(threads._blas, "lib", None)       # as where threadpoolctl finds no BLAS it can set
    with pytest.raises(RuntimeError, match="needs a BLAS whose threads threadpoolctl can set"):
        DataParallel(GPT(TINY_GPT), 2)
    net = DataParallel(GPT(TINY_GPT), 1)                   # one thread needs nothing from BLAS
    np.testing.assert_array_equal(net(ids(2, 6)), net.module(ids(2, 6)))


@needs_blas
def test_an_error_in_a_replica_thread_reaches_the_caller_and_blas_is_restored():
    before = blas_threads.current()
    x = ids(4, 6)
    x[3, 0] = 99                                             # only the second shard's rows hold a bad id
    with pytest.raises(ValueError, match="idx"):
        DataParallel(GPT(TINY_GPT), 2)(x)
    assert blas_threads.current() == before
