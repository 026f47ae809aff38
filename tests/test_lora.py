"""LoRA: gradients of A and B only (the frozen weight's is never formed), merge/unmerge, adapters
trained alone, saved and loaded on their own."""
import numpy as np
import pytest

from minillm import backend, nn
from minillm.gradcheck import TOLERANCE, check_module
from minillm.models import Llama, LlamaConfig
from minillm.models.lora import (apply_lora, load_adapters, lora_parameters, merge_lora, save_adapters,
                                 unmerge_lora)
from minillm.nn import linear
from minillm.training.optim import AdamW


def tiny_llama():
    backend.manual_seed(0)
    return Llama(LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=8,
                             intermediate_size=12)).to(dtype=np.float64)


IDS = np.random.default_rng(0).integers(0, 11, (2, 6))


def randomise_b(model, seed=1):
    rng = np.random.default_rng(seed)
    for p in lora_parameters(model)[1::2]:
        p.data[...] = rng.standard_normal(p.data.shape)


def test_gradients_of_a_and_b_and_the_input_and_none_of_the_frozen_weight(monkeypatch):
    backend.manual_seed(0)
    layer = nn.LoRALinear(nn.Linear(6, 5), rank=2, alpha=4).to(dtype=np.float64)
    layer.lora_B.data[...] = np.random.default_rng(1).standard_normal((5, 2))
    monkeypatch.setattr(linear, "linear_backward", lambda *a: pytest.fail("the frozen weight's dW was formed"))
    errors = check_module(layer, np.random.default_rng(2).standard_normal((2, 3, 6)))
    assert max(errors["lora_A"], errors["lora_B"], errors["input0"]) < TOLERANCE
    assert not layer.base.weight.grad.any() and not layer.base.bias.grad.any()


def test_b_starts_at_zero_so_the_wrapped_model_is_the_model():
    model = tiny_llama()
    before = model(IDS)
    apply_lora(model, rank=2, targets=("q_proj", "v_proj", "down_proj"))
    np.testing.assert_array_equal(model(IDS), before)


def test_merged_and_unmerged_give_the_same_logits_and_unmerge_restores_the_weights():
    model = tiny_llama()
    names = apply_lora(model, rank=2, alpha=8, targets=("q_proj", "v_proj"))
    assert names == ["layers.0.self_attn.q_proj", "layers.1.self_attn.q_proj", "layers.0.self_attn.v_proj",
                     "layers.1.self_attn.v_proj"]
    randomise_b(model)
    weights = {k: v.copy() for k, v in model.state_dict().items() if "base.weight" in k}
    adapted = model(IDS)
    merge_lora(model)
    np.testing.assert_allclose(model(IDS), adapted, atol=1e-12)
    unmerge_lora(model)
    for k, v in model.state_dict().items():
        if k in weights:
            np.testing.assert_allclose(v, weights[k], atol=1e-14)


def test_fine_tuning_changes_only_the_adapters():
    model = tiny_llama()
    apply_lora(model, rank=2, targets=("q_proj", "v_proj"))
    frozen = {k: v.copy() for k, v in model.state_dict().items() if "lora_" not in k}
    adapters = {k: v.copy() for k, v in model.state_dict().items() if "lora_" in k}
    opt, loss_fn = AdamW(lora_parameters(model), lr=1e-2), nn.CrossEntropyLoss()
    for _ in range(3):
        model.zero_grad()
        loss_fn(model(IDS[:, :-1]), IDS[:, 1:])
        model.backward(loss_fn.backward())
        opt.step()
    after = model.state_dict()
    assert all(np.array_equal(after[k], v) for k, v in frozen.items())
    assert all(not np.array_equal(after[k], v) for k, v in adapters.items() if k.endswith("lora_B"))


def test_adapters_save_and_load_on_their_own(tmp_path):
    model = tiny_llama()
    apply_lora(model, rank=2, alpha=4, targets=("q_proj", "v_proj"))
    randomise_b(model)
    save_adapters(model, tmp_path)
    assert (tmp_path / "adapter.npz").stat().st_size < 10_000
    fresh = tiny_llama()
    config = load_adapters(fresh, tmp_path)
    assert config["r"] == 2 and config["target_modules"] == ["q_proj", "v_proj"]
    np.testing.assert_allclose(fresh(IDS), model(IDS), atol=1e-6)      # adapters are stored in float32


def test_bad_targets_and_ranks_are_named():
    with pytest.raises(ValueError, match=r"LoRA targets \['qkv'\] match no Linear of Llama; its Linears are named"):
        apply_lora(tiny_llama(), 2, targets=("qkv",))
    with pytest.raises(ValueError, match=r"rank must be an integer in \[1, 4\], got 9"):
        nn.LoRALinear(nn.Linear(4, 6), rank=9)


def test_minillm_finetune_writes_adapters_only_and_generate_uses_them(tmp_path, capsys):
    from minillm.cli import main
    text = tmp_path / "text.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x * {i % 9}\n" for i in range(300)))
    code = tmp_path / "code.txt"
    code.write_text("".join(f"    return f{i % 7}(x) * {i}\n" for i in range(400)))     # its characters only
    base = tmp_path / "base"
    tiny = ["--n-layer", "1", "--n-head", "4", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
            "--eval-interval", "4", "--eval-batches", "1", "--max-steps", "4"]
    assert main(["train", "--model", "llama", "--data", str(text), "--out", str(base)] + tiny) == 0
    before = (base / "ckpt.npz").read_bytes()
    out = tmp_path / "lora"
    assert main(["finetune", "--ckpt", str(base), "--data", str(code), "--lora-rank", "2", "--out", str(out),
                 "--max-steps", "4", "--eval-interval", "2", "--eval-batches", "1", "--batch-size", "4"]) == 0
    captured = capsys.readouterr()
    assert "trainable parameters of" in captured.err and "next: minillm generate" in captured.out
    assert {"adapter.npz", "adapter_config.json", "log.csv", "loss.png"} == {p.name for p in out.iterdir()}
    assert (base / "ckpt.npz").read_bytes() == before
    assert main(["generate", "--ckpt", str(base), "--adapters", str(out), "--prompt", "ret", "--max-new-tokens", "4",
                 "--seed", "0"]) == 0
    assert "LoRA adapters from" in capsys.readouterr().err
    assert main(["finetune", "--ckpt", str(base), "--data", str(code), "--out", str(out)]) == 2
    assert "already holds adapters" in capsys.readouterr().err
    assert main(["finetune", "--ckpt", str(base), "--data", str(code), "--out", str(tmp_path / "x"),
                 "--targets", "qkv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--targets: LoRA targets ['qkv'] match no Linear" in err[0]
