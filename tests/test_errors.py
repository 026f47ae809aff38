"""Bad input is caught at the public entry with a message naming the argument, the expected and the actual value."""
import numpy as np
import pytest

from minillm import nn
from minillm.nn import attention

x3 = np.zeros((2, 4, 8), dtype=np.float32)


def _seed(value):
    from minillm import backend
    backend.manual_seed(value)


def _train_config(**fields):
    from minillm.training import TrainConfig
    return TrainConfig(**fields)


def _generate(**options):
    """GPT.generate on a tiny model with 2 new tokens unless ``options`` says otherwise."""
    from minillm.models import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    return model.generate(np.zeros((1, 2), np.int64), **{"max_new_tokens": 2, **options})


def _tokenizers():
    from minillm import tokenizers
    return tokenizers


def _char():
    return _tokenizers().CharTokenizer.train("hello")


def _step_memory(batch):
    from minillm.models import GPTConfig
    from minillm.models.config_checks import check_step_memory
    check_step_memory(GPTConfig(vocab_size=11, block_size=8), batch, 8, "test")


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: nn.Linear(64, 3)(np.zeros((2, 32), np.float32)), ValueError,
     r"Linear\(in_features=64\) got input with last dimension 32"),
    (lambda: nn.Linear(8, 3)(np.zeros((2, 8), dtype=np.int64)), TypeError, r"input must be a floating-point array"),
    (lambda: nn.MultiHeadAttention(100, 3), ValueError, r"embed_dim 100 is not divisible by num_heads 3"),
    (lambda: nn.Embedding(10, 4)(np.array([[1, 10]])), ValueError, r"must lie in \[0, 10\), got values in \[1, 10\]"),
    (lambda: nn.Embedding(10, 4)(np.array([[-1, 2]])), ValueError, r"must lie in \[0, 10\)"),
    (lambda: nn.Embedding(10, 4)(np.array([[1.0, 2.0]])), TypeError, r"integer array of token ids, got .*float64"),
    (lambda: nn.Embedding(10, 4, padding_idx=12), ValueError, r"padding_idx must lie in \[0, 10\), got 12"),
    (lambda: attention.scaled_dot_product_attention(x3[None], x3[None], x3[None], attn_mask=np.ones((3, 3), bool)),
     ValueError, r"attn_mask of shape \(3, 3\) does not broadcast to \(B, H, T, S\) = \(1, 2, 4, 4\)"),
    (lambda: attention.scaled_dot_product_attention(x3[None], x3[None], x3[None], key_padding_mask=np.ones((1, 5), bool)),
     ValueError, r"key_padding_mask must be a bool array of shape \(B, S\) = \(1, 4\)"),
    (lambda: attention.scaled_dot_product_attention(x3, x3, x3), ValueError, r"q must be 4-D, got shape \(2, 4, 8\)"),
    (lambda: attention.scaled_dot_product_attention(x3[None], x3[None, :, :2], x3[None]), ValueError,
     r"expected q \(B, H, T, D\) and k, v \(B, H, S, D\)"),
    (lambda: attention.scaled_dot_product_attention(x3[None], x3[None].astype(np.float64), x3[None]), TypeError,
     r"share one dtype, got q=float32, k=float64"),
    (lambda: nn.MultiHeadAttention(8, 2)(np.zeros((2, 4, 6), np.float32)), ValueError, r"x with last dimension 6"),
    (lambda: nn.MultiHeadAttention(8, 2)(x3, np.zeros((2, 4, 5), np.float32)), ValueError,
     r"memory with last dimension 5"),
    (lambda: nn.LayerNorm(8)(np.zeros((2, 7), np.float32)), ValueError, r"LayerNorm\(8\) got input with last dimension 7"),
    (lambda: nn.LayerNorm((4, 8)), ValueError, r"only the last dimension"),
    (lambda: nn.GELU("fast"), ValueError, r'approximate must be "tanh" or "none", got \'fast\''),
    (lambda: nn.Dropout(1.0), ValueError, r"p must lie in \[0, 1\), got 1.0"),
    (lambda: nn.LSTM(3, 4)(np.zeros((2, 5, 6), np.float32)), ValueError, r"LSTM\(input_size=3\) got input with last dimension 6"),
    (lambda: nn.LSTM(3, 4)(np.zeros((2, 3), np.float32)), ValueError, r"input must be 3-D, got shape \(2, 3\)"),
    (lambda: nn.LSTM(3, 4, num_layers=2)(np.zeros((2, 5, 3), np.float32), (np.zeros((1, 2, 4)), np.zeros((1, 2, 4)))),
     ValueError, r"state \(h0, c0\) must each have shape \(num_layers, B, H\) = \(2, 2, 4\), got \(1, 2, 4\)"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((4, 5), np.float32), np.array([0, 1, 5, 2])), ValueError,
     r"targets must lie in \[0, 5\) or equal ignore_index=-100, got values in \[0, 5\]"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((4, 5), np.float32), np.zeros(3, dtype=int)), ValueError,
     r"targets shape \(3,\) must equal logits shape without the class dimension \(4,\)"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((4, 5), np.float32), np.zeros(4)), TypeError,
     r"targets must be integer class ids, got dtype float64"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, r"label_smoothing must lie in \[0, 1\], got 1.5"),
    (lambda: nn.TransformerBlock(8, 2, activation="swish"), ValueError, r"activation must be one of"),
    (lambda: nn.SinusoidalPositionalEncoding(8, max_len=3)(x3), ValueError, r"sequence length 4 exceeds max_len 3"),
    (lambda: nn.MultiHeadAttention(8, 2)(np.zeros((2, 0, 8), np.float32)), ValueError,
     r"x must hold at least one position \(axis 1\), got shape \(2, 0, 8\)"),
    (lambda: attention.scaled_dot_product_attention(x3[None], x3[None, :, :0], x3[None, :, :0]), ValueError,
     r"k must hold at least one position"),
    (lambda: _seed(-1), ValueError, r"seed must be an integer >= 0, got -1"),
    (lambda: _seed(2.5), TypeError, r"seed must be an integer >= 0, got 2.5"),
    (lambda: _train_config(seed=-3), ValueError, r"TrainConfig: seed must be an integer >= 0, got -3"),
    (lambda: _generate(top_k=float("nan")), TypeError, r"top_k must be an integer >= 1 or None, got nan"),
    (lambda: _generate(top_p=float("nan")), ValueError, r"top_p must be a number in \(0, 1\], got nan"),
    (lambda: _generate(temperature=True), ValueError, r"temperature must be a finite number > 0, got True"),
    (lambda: _generate(max_new_tokens=-1), ValueError, r"max_new_tokens must be >= 0, got -1"),
    (lambda: _generate(seed=-2), ValueError, r"seed must be an integer >= 0, got -2"),
    (lambda: _char().decode(3), TypeError, r"CharTokenizer.decode: ids must be a 1-D sequence of integers"),
    (lambda: _char().decode(np.zeros((2, 2), int)), TypeError, r"got an array of shape \(2, 2\)"),
    (lambda: _tokenizers().CharTokenizer(["a", "a"]), ValueError, r"CharTokenizer: chars holds 'a' twice"),
    (lambda: _tokenizers().ByteBPETokenizer(None), TypeError, r"BPE merges must be a list of pairs"),
    (lambda: _tokenizers().ByteBPETokenizer([], ["<s>"], special_ids=[-1]), ValueError,
     r"special_ids must hold integers >= 0, got -1"),
    (lambda: _tokenizers().WordPieceTokenizer(None), TypeError, r"vocab must be a list of token strings"),
    (lambda: _tokenizers().tokenizer_from_dict([]), TypeError, r"tokenizer description must be a JSON object"),
    (lambda: _tokenizers().tokenizer_from_dict({"type": "char"}), ValueError,
     r"tokenizer description \(char\): the field 'chars' is missing"),
    (lambda: _step_memory(10 ** 9), ValueError, r"one training step on 1,000,000,000 x 8 tokens would hold about"),
])
def test_bad_input_raises_clear_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"Linear.backward\(\) was called without a preceding forward\(\)"):
        nn.Linear(3, 2).backward(np.zeros((1, 2)))


def test_backward_twice_for_one_forward():
    m = nn.LayerNorm(3)
    m(np.ones((1, 3), np.float32))
    m.backward(np.ones((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="or twice for one forward"):
        m.backward(np.ones((1, 3), np.float32))


def test_load_state_dict_lists_every_problem():
    m = nn.TransformerBlock(8, 2)
    state = m.state_dict()
    state.pop("norm1.weight")
    state["extra.weight"] = np.zeros(3)
    state["ff.linear1.weight"] = np.zeros((5, 8))
    with pytest.raises(ValueError) as info:
        m.load_state_dict(state)
    msg = str(info.value)
    assert "missing keys: norm1.weight" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "ff.linear1.weight: expected (32, 8), got (5, 8)" in msg


def test_load_state_dict_changes_nothing_when_one_value_cannot_be_cast():
    m = nn.Linear(3, 2)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    state = {"weight": np.full((2, 3), 7.0), "bias": np.array(["a", "b"])}     # weight is fine, bias is not
    with pytest.raises(ValueError, match=r"bias: dtype <U1 is not a number type \(no parameter was changed\)"):
        m.load_state_dict(state)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), 0.0, -1.0])
def test_sampling_refuses_a_temperature_that_is_not_a_finite_positive_number(temperature):
    from minillm.models.sampling import sample_next
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sample_next(np.zeros((1, 5)), temperature=temperature)


def test_a_tiny_temperature_samples_the_argmax_instead_of_nan():
    from minillm.models.sampling import sample_next
    logits = np.array([[0.0, 3.0, 1.0], [2.0, -1.0, 0.5]])
    for temperature in (1e-320, 1e-30):
        got = sample_next(logits, temperature=temperature, top_p=0.9, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(got, [1, 0])


@pytest.mark.parametrize("field,value", [("eval_interval", 0), ("eval_batches", 0), ("max_steps", -1),
                                         ("lr", float("nan")), ("warmup_steps", -5), ("threads", 1.5)])
def test_train_config_names_a_field_out_of_range(field, value):
    from minillm.training import TrainConfig
    with pytest.raises(ValueError, match=f"TrainConfig: {field} must be"):
        TrainConfig(**{field: value})


def test_multi_head_attention_with_zero_heads_and_lstm_cell_with_a_wrong_state():
    with pytest.raises(ValueError, match="MultiHeadAttention: num_heads must be an integer >= 1, got 0"):
        nn.MultiHeadAttention(8, 0)
    cell = nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"state \(h, c\) must be two arrays of shape \(B, H\) = \(2, 4\)"):
        cell(np.ones((2, 3), np.float32), (np.zeros((2, 4), np.float32), np.zeros((2, 5), np.float32)))


@pytest.mark.parametrize("shape,hint", [((3,), "pass idx[None]"), ((1, 0), ""), ((0, 3), "")])
def test_models_and_generation_refuse_prompts_that_are_not_a_batch_of_sequences(shape, hint):
    from minillm.models import GPT, GPTConfig, LSTMLM, LSTMConfig
    idx = np.ones(shape, dtype=np.int64)
    for model in (GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)),
                  LSTMLM(LSTMConfig(11, 4, 8, 1))):
        for call in (lambda: model(idx), lambda: model.generate(idx, 2)):
            with pytest.raises(ValueError, match=r"idx must have shape \(B, T\) with B, T >= 1") as info:
                call()
            assert hint in str(info.value)
