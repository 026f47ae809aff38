"""Whole-model gradient checks on tiny configs, the KV cache, and GPT parity with a PyTorch twin."""
import numpy as np
import pytest

import minillm
from minillm import backend
from minillm.gradcheck import check_module
from minillm.models import (GPT, LSTMLM, BertConfig, BertForMaskedLM, BertForSequenceClassification, GPTConfig,
                            LSTMConfig)
from minillm.models.sampling import filter_logits, sample_next

TINY_GPT = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
TINY_BERT = BertConfig(vocab_size=11, max_position=8, n_layer=2, n_head=2, n_embd=8, num_labels=3)


def ids(*shape, seed=0, high=11):
    return np.random.default_rng(seed).integers(0, high, shape)


def only_ids(m, d):
    return (m.backward(d[0]),)


def assert_ok(errors):
    bad = {k: f"{v:.2e}" for k, v in errors.items() if not v <= 1e-6}
    assert not bad, f"gradient check failed: {bad}"


# (make, forward keyword arguments) for each model on a tiny config, inputs ids(2, 6)
TINY_MODELS = pytest.mark.parametrize("make,kw", [
    (lambda: GPT(TINY_GPT), {}),
    (lambda: BertForMaskedLM(TINY_BERT), {"key_padding_mask": np.array([[0] * 6, [0] * 4 + [1] * 2], bool)}),
    (lambda: BertForSequenceClassification(TINY_BERT), {"key_padding_mask": np.array([[0] * 6, [0] * 3 + [1] * 3], bool)}),
    (lambda: LSTMLM(LSTMConfig(11, 5, 6, 2)), {}),
], ids=["gpt", "bert-mlm", "bert-cls", "lstm-lm"])


@TINY_MODELS
def test_whole_model_gradcheck(xp_backend, make, kw):
    model = make().double()
    kw = {k: backend.to_device(v) for k, v in kw.items()}
    assert_ok(check_module(model, backend.to_device(ids(2, 6)), backward=only_ids, max_entries=30, **kw))


@TINY_MODELS
@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw"])
def test_float32_training_step_stays_float32(make, kw, opt):
    """A whole float32 step (forward, loss, backward, clipping, update) makes no float64 array
    anywhere: not the logits, the loss, a gradient, a weight or an optimizer moment. CI runs this
    on NumPy 2 and on NumPy 1.23, whose promotion rules differ for scalars."""
    from minillm.nn import CrossEntropyLoss
    from minillm.training.optim import SGD, Adam, AdamW, clip_grad_norm
    model = make()
    logits = model(ids(2, 6), **kw)
    targets = ids(*logits.shape[:-1], seed=1, high=logits.shape[-1])
    loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(logits, targets)
    model.zero_grad()
    model.backward(loss_fn.backward())
    clip_grad_norm(model.parameters(), 1e-3)                     # small max_norm: the scaling runs
    optimizer = {"sgd": lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                 "adam": lambda p: Adam(p, weight_decay=0.01),
                 "adamw": lambda p: AdamW(p)}[opt](model.parameters())
    optimizer.step()
    assert logits.dtype == np.float32 and np.asarray(loss).dtype == np.float32
    for name, p in model.named_parameters():
        assert (p.data.dtype, p.grad.dtype) == (np.float32, np.float32), name
    for state in optimizer.state.values():
        for key, value in state.items():
            assert value.dtype == np.float32, key


def test_cached_generation_logits_stay_float32():
    m = GPT(TINY_GPT)
    _, logits = m.generate(ids(1, 3), 4, do_sample=False, use_cache=True, return_logits=True)
    assert all(step.dtype == np.float32 for step in logits)


def test_gpt_weight_tying_shares_one_array():
    m = GPT(TINY_GPT)
    names = [n for n, _ in m.named_parameters()]
    assert "lm_head.weight" not in names and names[0] == "wte.weight"
    m.double()
    m(ids(2, 6))
    m.backward(np.random.default_rng(1).standard_normal((2, 6, 11)))
    # both uses of wte add into one gradient: the check above proves the sum; here, that it is nonzero
    assert float(abs(m.wte.weight.grad).max()) > 0


def test_kv_cache_greedy_identical_tokens_and_logits():
    minillm.manual_seed(3)
    m = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16))
    prompt = ids(2, 5, high=20)
    a, la = m.generate(prompt, 20, do_sample=False, use_cache=True, return_logits=True)    # 25 > block_size: crops
    b, lb = m.generate(prompt, 20, do_sample=False, use_cache=False, return_logits=True)
    np.testing.assert_array_equal(a, b)
    assert max(float(np.abs(x - y).max()) for x, y in zip(la, lb)) <= 1e-5


def test_generation_window_jumps_by_half_a_block():
    """Past block_size the window keeps the newest block_size // 2 tokens, then grows again:
    each step's logits equal a plain forward over exactly that window."""
    minillm.manual_seed(4)
    m = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    out, logits = m.generate(ids(1, 3, high=20), 12, do_sample=False, use_cache=True, return_logits=True)
    start = 0
    for step, n in enumerate(range(3, 15)):        # n = tokens known before this step
        if n - start > 8:
            start = n - 4
        assert n - start <= 8
        want = m(out[:, start:n])[:, -1]
        np.testing.assert_allclose(logits[step], want, atol=1e-5)


def test_sampling_is_seeded_and_filters_work():
    minillm.manual_seed(0)
    m = GPT(TINY_GPT)
    a = m.generate(ids(1, 3), 10, seed=5, top_k=3, top_p=0.9, temperature=0.7)
    b = m.generate(ids(1, 3), 10, seed=5, top_k=3, top_p=0.9, temperature=0.7)
    np.testing.assert_array_equal(a, b)
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert np.isfinite(filter_logits(logits, top_k=2)).sum() == 2
    assert np.isfinite(filter_logits(logits, top_p=0.75)).sum() == 2      # 0.5 + 0.3 reaches 0.75
    assert np.isfinite(filter_logits(logits, top_p=0.5)).sum() == 1
    assert sample_next(logits, do_sample=False)[0] == 0
    with pytest.raises(ValueError, match=r"top_p must be a number in \(0, 1\], got 1.5"):
        sample_next(logits, top_p=1.5)


def test_lstm_generation_carries_state():
    minillm.manual_seed(0)
    m = LSTMLM(LSTMConfig(11, 5, 6))
    out = m.generate(ids(1, 4), 6, do_sample=False)
    assert out.shape == (1, 10)
    # the same greedy continuation recomputed from scratch, one full forward per token
    seq = ids(1, 4)
    for _ in range(6):
        seq = np.concatenate([seq, m(seq)[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(out, seq)


def test_prompt_longer_than_block_size_is_cropped_with_a_warning():
    m = GPT(TINY_GPT)
    with pytest.warns(UserWarning, match="cropped to the last 8"):
        out = m.generate(ids(1, 12), 2, do_sample=False)
    assert out.shape == (1, 14)


class TorchGPT:
    """The same network written with torch.nn (weights copied from minillm), for parity."""

    def __init__(self, m, torch):
        self.torch, self.m = torch, m
        cfg = m.config
        self.layers = []
        for block in m.h:
            layer = torch.nn.TransformerEncoderLayer(cfg.n_embd, cfg.n_head, 4 * cfg.n_embd, dropout=0.0,
                                                     activation=lambda a: torch.nn.functional.gelu(a, approximate="tanh"),
                                                     batch_first=True, norm_first=True).double()
            state = {k: torch.tensor(v) for k, v in block.state_dict().items()}
            layer.load_state_dict({k.replace("ff.", ""): v for k, v in state.items()})
            self.layers.append(layer)
        self.wte = torch.tensor(m.wte.weight.data, requires_grad=True)
        self.wpe = torch.tensor(m.wpe.weight.data, requires_grad=True)
        self.ln_f = torch.nn.LayerNorm(cfg.n_embd).double()
        self.ln_f.load_state_dict({k: torch.tensor(v) for k, v in m.ln_f.state_dict().items()})

    def forward(self, idx):
        torch = self.torch
        T = idx.shape[1]
        x = self.wte[torch.tensor(idx)] + self.wpe[:T]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.ln_f(x) @ self.wte.T


def test_gpt_matches_pytorch_logits_and_every_gradient():
    torch = pytest.importorskip("torch")
    minillm.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)).double()
    tm = TorchGPT(m, torch)
    x = ids(3, 7, high=13)
    y = ids(3, 7, seed=1, high=13)
    logits = m(x)
    tlogits = tm.forward(x)
    np.testing.assert_allclose(logits, tlogits.detach().numpy(), rtol=1e-10, atol=1e-10)
    from minillm.nn import CrossEntropyLoss
    lf = CrossEntropyLoss()
    loss = lf(logits, y)
    m.backward(lf.backward())
    tloss = torch.nn.functional.cross_entropy(tlogits.reshape(-1, 13), torch.tensor(y).reshape(-1))
    tloss.backward()
    assert abs(float(loss) - tloss.item()) < 1e-12
    np.testing.assert_allclose(m.wte.weight.grad, tm.wte.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg="wte")
    np.testing.assert_allclose(m.wpe.weight.grad, tm.wpe.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg="wpe")
    for i, (block, layer) in enumerate(zip(m.h, tm.layers)):
        named = dict(block.named_parameters())
        for k, p in layer.named_parameters():
            ours = named["ff." + k if k.startswith("linear") else k].grad
            np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"h.{i}.{k}")
