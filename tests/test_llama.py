"""The Llama pieces: RMSNorm, SiLU, rotary positions, SwiGLU, grouped-query attention and the model.

float64 gradient checks of every layer and option; PyTorch and transformers as second witnesses
(skipped where they are not installed): nn.RMSNorm, nn.SiLU, Hugging Face's rotary embedding and a
tiny random LlamaForCausalLM made here, no network.
"""
import numpy as np
import pytest

from minillm import backend, nn
from minillm.gradcheck import TOLERANCE, check_module
from minillm.models import Llama, LlamaConfig
from minillm.nn.grouped_attention import repeat_kv, repeat_kv_backward
from minillm.nn.rotary import apply_rotary, rotary_backward


def x64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def worst(module, *inputs, **kwargs):
    return max(check_module(module.to(dtype=np.float64), *inputs, **kwargs).values())


@pytest.mark.parametrize("make", [lambda: nn.RMSNorm(7, eps=1e-5), lambda: nn.SiLU(), lambda: nn.SwiGLU(7, 11)],
                         ids=["RMSNorm", "SiLU", "SwiGLU"])
def test_layer_gradients(make):
    assert worst(make(), x64(2, 3, 7)) < TOLERANCE


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("interleaved", [False, True])
def test_grouped_query_attention_gradients(kv_heads, interleaved):
    attn = nn.GroupedQueryAttention(16, 4, kv_heads, rope_theta=500000.0, rope_interleaved=interleaved)
    assert worst(attn, x64(2, 5, 16)) < TOLERANCE


def test_rotary_backward_is_the_inverse_rotation_and_checks_against_finite_differences():
    from minillm.gradcheck import check_pair
    q, k = x64(2, 3, 4, 6), x64(2, 1, 4, 6, seed=1)
    for interleaved in (False, True):
        forward = lambda q, k: (lambda a, b, c: ((a, b), c))(*apply_rotary(q, k, np.arange(5, 9), 100.0, interleaved))
        errors = check_pair(forward, lambda d, c: rotary_backward(d[0], d[1], c), (q, k), wrt=(0, 1))
        assert max(errors.values()) < TOLERANCE


def test_rotated_dot_products_depend_only_on_the_distance():
    q, k = x64(1, 1, 1, 8), x64(1, 1, 1, 8, seed=1)
    for interleaved in (False, True):
        dots = []
        for shift in (0, 7, 100):
            rq, _, _ = apply_rotary(q, q, np.array([shift + 3]), 10000.0, interleaved)
            rk, _, _ = apply_rotary(k, k, np.array([shift]), 10000.0, interleaved)
            dots.append(float((rq * rk).sum()))
        np.testing.assert_allclose(dots, dots[0], rtol=1e-10)


def test_interleaved_rotary_is_multiplication_by_a_complex_exponential():
    x = x64(1, 1, 3, 8)
    rx, _, _ = apply_rotary(x, x, np.arange(3), 10000.0, interleaved=True)
    z = x[..., 0::2] + 1j * x[..., 1::2]
    angle = np.arange(3)[:, None] * 10000.0 ** (-np.arange(0, 8, 2) / 8)
    w = z * np.exp(1j * angle)
    np.testing.assert_allclose(rx[..., 0::2], w.real, atol=1e-12)
    np.testing.assert_allclose(rx[..., 1::2], w.imag, atol=1e-12)


def test_repeated_kv_heads_receive_the_sum_of_their_copies():
    k, d = x64(2, 2, 3, 4), x64(2, 6, 3, 4, seed=1)
    np.testing.assert_allclose((repeat_kv(k, 3) * d).sum(), (k * repeat_kv_backward(d, 3)).sum())
    assert np.array_equal(repeat_kv(k, 3)[:, 4], k[:, 1])           # query head 4 reads kv head 4 // 3


def test_cached_positions_continue_across_decode_steps():
    backend.manual_seed(0)
    attn = nn.GroupedQueryAttention(8, 4, 2).to(dtype=np.float64)
    x = x64(2, 6, 8)
    full = attn(x)
    cache = attn.new_kv_cache(2, 8)
    steps = [attn(x[:, :3], kv_cache=cache)] + [attn(x[:, t:t + 1], kv_cache=cache) for t in range(3, 6)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-12)


@pytest.mark.parametrize("tied", [True, False])
def test_whole_llama_gradient(tied):
    backend.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=8,
                              intermediate_size=12, tie_word_embeddings=tied))
    idx = np.random.default_rng(1).integers(0, 11, (2, 6))
    assert worst(model, idx, backward=lambda m, d: (m.backward(d[0]),)) < TOLERANCE


def test_generation_with_and_without_the_cache_agree():
    backend.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=1, n_embd=8,
                              intermediate_size=12)).to(dtype=np.float64)
    a, la = model.generate(np.array([[1, 2, 3]]), 9, do_sample=False, return_logits=True)    # past block_size
    b, lb = model.generate(np.array([[1, 2, 3]]), 9, do_sample=False, use_cache=False, return_logits=True)
    assert np.array_equal(a, b) and max(abs(x - y).max() for x, y in zip(la, lb)) < 1e-12


def test_bad_configs_name_the_fields():
    with pytest.raises(ValueError, match="n_head 4 is not divisible by n_kv_head 3"):
        LlamaConfig(n_head=4, n_kv_head=3)
    with pytest.raises(ValueError, match="must be even"):
        LlamaConfig(n_embd=12, n_head=4, n_kv_head=2)
    with pytest.raises(ValueError, match="num_heads 6 is not divisible by num_kv_heads 4"):
        nn.GroupedQueryAttention(12, 6, 4)


def test_minillm_train_model_llama_then_generate(tmp_path, capsys):
    from minillm.cli import main
    text = tmp_path / "text.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x * {i % 9}\n" for i in range(300)))
    out = tmp_path / "run"
    assert main(["train", "--model", "llama", "--data", str(text), "--out", str(out), "--n-layer", "1",
                 "--n-head", "4", "--n-kv-head", "1", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
                 "--max-steps", "6", "--eval-interval", "3", "--eval-batches", "1"]) == 0
    assert "next: minillm generate" in capsys.readouterr().out
    assert main(["generate", "--ckpt", str(out), "--prompt", "def ", "--max-new-tokens", "5", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("def ")
    assert main(["train", "--model", "llama", "--data", str(text), "--out", str(tmp_path / "bad"), "--n-head", "4",
                 "--n-kv-head", "3", "--max-steps", "1"]) == 2
    assert "--n-head 4 is not divisible by --n-kv-head 3" in capsys.readouterr().err


# ---------------------------------------------------------------------------- PyTorch and transformers
torch = pytest.importorskip("torch")


def test_rms_norm_and_silu_match_torch():
    x = x64(2, 3, 7)
    ours = nn.RMSNorm(7, eps=1e-5).to(dtype=np.float64)
    ours.weight.data[...] = x64(7, seed=2)
    ref = torch.nn.RMSNorm(7, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.weight.data))
    for a, b in ((ours, ref), (nn.SiLU(), torch.nn.SiLU())):
        tx = torch.tensor(x, requires_grad=True)
        out = b(tx)
        d = x64(*out.shape, seed=3)
        out.backward(torch.tensor(d))
        np.testing.assert_allclose(a(x), out.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.backward(d), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-10)


transformers = pytest.importorskip("transformers")


def hf_llama(n_kv_head, theta, tied, seed=0):
    """A tiny random LlamaForCausalLM and the same model in minillm (float32)."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=37, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=n_kv_head, rope_theta=theta,
                                      max_position_embeddings=32, rms_norm_eps=1e-5, tie_word_embeddings=tied,
                                      attention_bias=False, mlp_bias=False)
    ref = transformers.LlamaForCausalLM(config).eval()
    ours = Llama(LlamaConfig(vocab_size=37, block_size=32, n_layer=2, n_head=4, n_kv_head=n_kv_head, n_embd=32,
                             intermediate_size=48, rope_theta=theta, rms_norm_eps=1e-5, tie_word_embeddings=tied))
    state = {k.removeprefix("model."): v.detach().numpy() for k, v in ref.state_dict().items()}
    if tied:
        state.pop("lm_head.weight", None)
    ours.load_state_dict(state)
    return ref, ours


@pytest.mark.parametrize("n_kv_head, theta, tied", [(2, 10000.0, True), (1, 500000.0, False), (4, 10000.0, False)])
def test_logits_and_greedy_generations_match_transformers(n_kv_head, theta, tied):
    ref, ours = hf_llama(n_kv_head, theta, tied)
    idx = np.random.default_rng(0).integers(0, 37, (2, 9))
    with torch.no_grad():
        want = ref(torch.tensor(idx)).logits.numpy()
    np.testing.assert_allclose(ours(idx), want, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        hf_ids = ref.generate(torch.tensor(idx[:1]), max_new_tokens=12, do_sample=False).numpy()
    assert np.array_equal(ours.generate(idx[:1], 12, do_sample=False), hf_ids)


def test_rotary_matches_hugging_faces_rotate_half():
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    q, k, positions = x64(2, 4, 5, 8), x64(2, 2, 5, 8, seed=1), np.arange(3, 8)
    for theta in (10000.0, 500000.0):
        ours_q, ours_k, _ = apply_rotary(q, k, positions, theta)
        rotary = LlamaRotaryEmbedding(transformers.LlamaConfig(hidden_size=32, num_attention_heads=4, rope_theta=theta))
        cos, sin = rotary(torch.zeros(1, 5, 32, dtype=torch.float64), torch.tensor(positions)[None])
        want_q, want_k = apply_rotary_pos_emb(torch.tensor(q), torch.tensor(k), cos.double(), sin.double())
        # transformers computes the angles in float32: agreement to float32 rounding of the angle
        np.testing.assert_allclose(ours_q, want_q.numpy(), atol=1e-6)
        np.testing.assert_allclose(ours_k, want_k.numpy(), atol=1e-6)
