"""The Module system: naming, gradient accumulation, zero_grad, train/eval, dtype moves, state_dict round trip."""
import numpy as np

import minillm
from minillm import nn


def test_parameter_names_follow_pytorch():
    block = nn.TransformerBlock(8, 2)
    names = [n for n, _ in block.named_parameters()]
    assert names[:4] == ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                         "self_attn.out_proj.bias"]
    assert "ff.linear1.weight" in names and "norm2.bias" in names
    lstm = nn.LSTM(3, 4, num_layers=2)
    assert [n for n, _ in lstm.named_parameters()] == [
        f"{w}_l{i}" for i in range(2) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    stack = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert [n for n, _ in stack.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_gradients_accumulate_until_zero_grad():
    m = nn.Linear(3, 2)
    x, dy = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    m(x)
    m.backward(dy)
    once = m.weight.grad.copy()
    m(x)
    m.backward(dy)
    np.testing.assert_allclose(m.weight.grad, 2 * once)
    m.zero_grad()
    assert float(abs(m.weight.grad).max()) == 0.0


def test_train_eval_switches_dropout_everywhere():
    block = nn.TransformerBlock(8, 2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    block.eval()
    assert all(not m.training for _, m in block.named_modules())
    np.testing.assert_array_equal(block(x), block(x))            # deterministic in eval
    block.train()
    assert not np.array_equal(block(x), block(x))                 # dropout active in training


def test_double_and_float_keep_dtypes():
    m = nn.LSTM(3, 4).double()
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in m.parameters())
    y, _ = m(np.zeros((1, 2, 3)))
    assert y.dtype == np.float64
    m.float()
    y, _ = m(np.zeros((1, 2, 3), np.float32))
    assert y.dtype == np.float32                                 # float32 stays float32


def test_float32_stays_float32_through_every_layer():
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    for m in (nn.TransformerBlock(8, 2), nn.TransformerBlock(8, 2, norm_first=False, activation="gelu"),
              nn.SinusoidalPositionalEncoding(8), nn.LearnedPositionalEncoding(8, 10)):
        y = m(x)
        assert y.dtype == np.float32, type(m).__name__
        assert m.backward(np.ones_like(y)).dtype == np.float32, type(m).__name__
    logits = x.reshape(10, 8)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    assert loss_fn(logits, np.arange(10) % 8).dtype == np.float32
    assert loss_fn.backward().dtype == np.float32


def test_state_dict_round_trip():
    minillm.manual_seed(1)
    a = nn.TransformerBlock(8, 2)
    minillm.manual_seed(2)
    b = nn.TransformerBlock(8, 2)
    x = np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32)
    assert not np.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x), b(x))


def test_same_seed_same_weights():
    minillm.manual_seed(7)
    w1 = nn.Linear(4, 4).weight.data.copy()
    minillm.manual_seed(7)
    np.testing.assert_array_equal(w1, nn.Linear(4, 4).weight.data)
