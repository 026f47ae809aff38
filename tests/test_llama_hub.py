"""Hugging Face Llama directories: float32, float16, bfloat16 and sharded files load to the values
transformers reads; minillm -> safetensors -> transformers round trips; unsupported configs are
refused by name. Tiny random models are made here with transformers (no network)."""
import json

import numpy as np
import pytest

from minillm.hub_llama import load_llama, read_safetensors, save_llama

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def tiny(tied=False, n_kv_head=2, seed=0, **extra):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=37, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=n_kv_head, max_position_embeddings=32,
                                      rms_norm_eps=1e-5, tie_word_embeddings=tied, **extra)
    return transformers.LlamaForCausalLM(config).eval()


IDS = np.random.default_rng(0).integers(0, 37, (2, 7))


def hf_logits(model):
    with torch.no_grad():
        return model(torch.tensor(IDS)).logits.float().numpy()


@pytest.mark.parametrize("tied", [True, False])
def test_a_saved_transformers_model_loads_with_the_same_logits(tmp_path, tied):
    ref = tiny(tied)
    ref.save_pretrained(tmp_path)
    np.testing.assert_allclose(load_llama(tmp_path)(IDS), hf_logits(ref), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_files_load_to_the_values_transformers_reads(tmp_path, dtype):
    tiny().to(getattr(torch, dtype)).save_pretrained(tmp_path)
    header = json.loads((tmp_path / "model.safetensors").read_bytes()[8:8 + int.from_bytes(
        (tmp_path / "model.safetensors").read_bytes()[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F16" if dtype == "float16" else "BF16"}
    ref = transformers.LlamaForCausalLM.from_pretrained(tmp_path, dtype=getattr(torch, dtype))
    ours = load_llama(tmp_path).state_dict()
    for name, value in ref.state_dict().items():
        key = name.removeprefix("model.")
        assert np.array_equal(ours[key], value.float().numpy()), name       # exact: a widening, no rounding


def test_sharded_checkpoints_load_whole(tmp_path):
    ref = tiny()
    ref.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file() and len(list(tmp_path.glob("model-*.safetensors"))) > 1
    np.testing.assert_allclose(load_llama(tmp_path)(IDS), hf_logits(ref), atol=1e-4, rtol=1e-4)


def test_minillm_to_safetensors_to_transformers(tmp_path):
    ours = load_llama_from(tmp_path / "src")
    save_llama(ours, tmp_path / "out")
    back = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "out").eval()
    np.testing.assert_allclose(hf_logits(back), ours(IDS), atol=1e-4, rtol=1e-4)


def load_llama_from(folder):
    tiny(tied=True, n_kv_head=1).save_pretrained(folder)
    return load_llama(folder)


@pytest.mark.parametrize("change, words", [
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope scaling"),
    ({"attention_bias": True}, "attention_bias = True is not supported"),
    ({"sliding_window": 4096}, "sliding_window = 4096 is not supported"),
    ({"model_type": "qwen2"}, "model_type 'qwen2'"),
    ({"num_key_value_heads": 3}, "num_attention_heads 4 is not divisible by num_key_value_heads 3"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
])
def test_unsupported_configs_are_refused_by_name(tmp_path, change, words):
    tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as e:
        load_llama(tmp_path)
    assert "config.json" in str(e.value)


def test_a_damaged_weight_file_is_named(tmp_path):
    tiny().save_pretrained(tmp_path)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    (tmp_path / "model.safetensors").write_bytes(bytes(data[:len(data) // 2]))
    with pytest.raises(ValueError, match="model.safetensors: tensor .* does not fit its byte range"):
        read_safetensors(tmp_path / "model.safetensors")
    data[:8] = (10 ** 12).to_bytes(8, "little")
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="header claims"):
        load_llama(tmp_path)
