"""Files a user did not make with minillm, or that were damaged: each is refused in one line that
names the file and the field, before any array of the size it claims is made."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("safetensors")

from minillm import hub  # noqa: E402
from minillm.models import GPT, GPTConfig  # noqa: E402
from minillm.training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    from minillm.tokenizers import ByteBPETokenizer
    path = tmp_path_factory.mktemp("gpt2")
    hub.save_gpt2(GPT(GPTConfig(vocab_size=261, block_size=16, n_layer=2, n_head=2, n_embd=16)), path)
    ByteBPETokenizer.train("abab abab", 261).save_gpt2_files(path)
    return path


def edited(gpt2_dir, tmp_path, change):
    """A copy of the GPT-2 directory whose config.json is ``change(config)`` (a dict or anything JSON)."""
    copy = tmp_path / "copy"
    shutil.copytree(gpt2_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(change(config)))
    return copy


@pytest.mark.parametrize("change,message", [
    (lambda c: [c], "must hold a JSON object, got a list"),
    (lambda c: {**c, "n_head": 0}, "n_head must be an integer >= 1, got 0"),
    (lambda c: {**c, "n_embd": "16"}, "n_embd must be an integer >= 1, got '16'"),
    (lambda c: {**c, "n_layer": 10 ** 9}, "describes a model of about"),
    (lambda c: {**c, "n_layer": 3}, "n_layer is 3, but model.safetensors holds 2 layer(s)"),
    (lambda c: {**c, "n_head": 3}, "n_embd 16 is not divisible by n_head 3"),
    (lambda c: {k: v for k, v in c.items() if k != "n_positions"}, "the field 'n_positions' is missing"),
])
def test_a_bad_hugging_face_config_is_refused_before_building(gpt2_dir, tmp_path, change, message):
    path = edited(gpt2_dir, tmp_path, change)
    with pytest.raises(ValueError, match="config.json") as info:
        hub.load_gpt2(path)
    assert message in str(info.value)
    out = subprocess.run([sys.executable, "-m", "minillm.cli", "generate", "--pretrained", str(path), "--prompt", "a"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1


def test_a_config_json_that_is_not_json_names_the_file(gpt2_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(gpt2_dir, copy)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        hub.load_gpt2(copy)


def test_checkpoint_metadata_that_is_json_but_not_an_object(tmp_path):
    meta = np.frombuffer(json.dumps([1, 2]).encode(), dtype=np.uint8)
    np.savez(tmp_path / "ckpt.npz", __meta__=meta)
    with pytest.raises(CheckpointError, match="its metadata is a JSON list, not an object"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("field,value,message", [
    ("n_layer", 10 ** 9, "describes a model of about"),
    ("n_embd", -4, "n_embd must be an integer >= 1, got -4"),
    ("dropout", 1.5, "dropout must be a number in [0, 1), got 1.5"),
    ("colour", 1, "unknown GPTConfig field(s) 'colour'"),
])
def test_a_checkpoint_whose_model_config_is_wrong_fails_in_one_line(tmp_path, field, value, message):
    from minillm.training.checkpoint import save_checkpoint
    from minillm.tokenizers import CharTokenizer
    model = GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=2, n_embd=8))
    cfg = {**model.config.__dict__, field: value}
    save_checkpoint(tmp_path, model, {"kind": "gpt", "model_config": cfg, "tokenizer": CharTokenizer.train("abc").to_dict()})
    out = subprocess.run([sys.executable, "-m", "minillm.cli", "generate", "--ckpt", str(tmp_path), "--prompt", "a"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_command_line_sizes_that_describe_a_huge_model_are_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "minillm.cli", "train", "--n-embd", str(10 ** 12), "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "describes a model of about" in out.stderr, out.stderr
    assert not (tmp_path / "x").exists()


def test_an_npz_member_whose_header_claims_petabytes_is_refused_before_allocating(tmp_path):
    """A 3 KB checkpoint whose array header says (10^15,) float32: refused from the header alone."""
    import io
    import zipfile
    meta = json.dumps({"kind": "gpt"}).encode()
    good = io.BytesIO()
    np.save(good, np.frombuffer(meta, dtype=np.uint8))
    lie = io.BytesIO()
    np.lib.format.write_array_header_1_0(lie, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 15,)})
    lie.write(b"\0" * 64)
    with zipfile.ZipFile(tmp_path / "ckpt.npz", "w") as z:
        z.writestr("__meta__.npy", good.getvalue())
        z.writestr("model/w.npy", lie.getvalue())
    with pytest.raises(CheckpointError, match=r"model/w.npy claims shape \(1000000000000000,\) of float32 "
                                              r"\(4,000,000,000,000,000 bytes\) but holds"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("change,message", [
    (lambda m: {k: v for k, v in m.items() if k != "rng_init"}, "cannot be resumed: its metadata has no 'rng_init'"),
    (lambda m: {**m, "step": -4}, "step must be an integer >= 0, got -4"),
    (lambda m: {**m, "elapsed_s": "soon"}, "elapsed_s must be a finite number >= 0, got 'soon'"),
    (lambda m: {**m, "rng_batches": {"state": 1}}, "cannot be resumed"),
    (lambda m: {**m, "tokenizer": {"type": "char", "chars": 7}}, "tokenizer description (char)"),
])
def test_resuming_a_damaged_checkpoint_fails_in_one_line_and_keeps_it(tmp_path, capsys, change, message):
    from minillm.cli import main
    (tmp_path / "text.txt").write_text("hello world, a tiny text to train on. " * 20)
    args = ["train", "--data", str(tmp_path / "text.txt"), "--out", str(tmp_path / "run"), "--n-layer", "1",
            "--n-embd", "8", "--n-head", "2", "--block-size", "8", "--batch-size", "2", "--max-steps", "2",
            "--eval-interval", "1", "--eval-batches", "1"]
    assert main(args) == 0
    path = tmp_path / "run" / "ckpt.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = change(json.loads(arrays.pop("__meta__").tobytes()))
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    before = path.read_bytes()
    capsys.readouterr()
    assert main(args[:-6] + ["--max-steps", "4", "--eval-interval", "1", "--eval-batches", "1", "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("minillm: error: checkpoint "), err
    assert path.read_bytes() == before
