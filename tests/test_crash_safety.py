"""A process killed (SIGKILL) at random moments while it writes checkpoints never leaves a broken one.

A child process saves checkpoints in a tight loop; each save's weights are filled with the save's
number, so a loaded checkpoint must be one whole save (every weight equal to the same number, and
the metadata agreeing), never a mix or a truncated file. Then a real `minillm train` run is killed
mid-training and resumed with --resume, which must load and finish.
"""
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from minillm.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from minillm.models import GPT, GPTConfig
    from minillm.training.checkpoint import save_checkpoint
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=4, n_head=4, n_embd=128))   # about 3 MB
    out, i = sys.argv[1], 0
    while True:
        i += 1
        for p in model.parameters():
            p.data[...] = i
        save_checkpoint(out, model, {"kind": "gpt", "save_number": i})
        print(i, flush=True)
""")


def test_sigkill_during_checkpoint_writes_never_breaks_the_last_checkpoint(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    last_seen = 0
    for trial in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline()                       # at least one save finished in this process
        time.sleep(float(rng.uniform(0.0, 0.4)))            # then kill it anywhere: often mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        meta, state, _ = load_checkpoint(out, expected_kind="gpt")
        n = meta["save_number"]
        values = {float(v.flat[0]) for v in state.values()} | {float(v.max()) for v in state.values()}
        assert values == {float(n)}, f"trial {trial}: checkpoint mixes saves {values}"
        assert n >= 1
        last_seen = n
    assert last_seen >= 1


def test_killed_training_run_resumes(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("".join(f"{i} the quick brown fox jumps over the lazy dog\n" for i in range(400)))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "minillm.cli", "train", "--data", str(text), "--out", str(out),
            "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "--batch-size", "4",
            "--max-steps", "400", "--eval-interval", "2", "--eval-batches", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "ckpt.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    meta, _, _ = load_checkpoint(out)
    assert 0 < meta["step"] < 400
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {out} from step" in done.stderr
    assert load_checkpoint(out)[0]["step"] == 400


@pytest.mark.parametrize("what", ["tokenizer", "gpt2 files", "hugging face", "figure"])
def test_a_failed_save_leaves_the_previous_file_whole(tmp_path, monkeypatch, what):
    """Every file minillm writes for a user is written whole or not at all (minillm/files.py)."""
    import json
    from minillm import hub
    from minillm.cli.plots import plot_attention
    from minillm.models import GPT, GPTConfig
    from minillm.tokenizers import ByteBPETokenizer, save_tokenizer
    toks = [ByteBPETokenizer.train("abab abab", 260), ByteBPETokenizer.train("cdcd cdcd", 260)]
    models = [GPT(GPTConfig(vocab_size=v, block_size=8, n_layer=1, n_head=2, n_embd=8)) for v in (11, 13)]
    save = {"tokenizer": lambda k: save_tokenizer(toks[k], tmp_path / "tok.json"),
            "gpt2 files": lambda k: toks[k].save_gpt2_files(tmp_path),
            "hugging face": lambda k: hub.save_gpt2(models[k], tmp_path),
            "figure": lambda k: plot_attention([np.eye(3)[None] * (k + 1) / 2], list("abc"), tmp_path / "a.png")}[what]
    save(0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")
    import safetensors.numpy
    target = {"tokenizer": (json, "dumps"), "gpt2 files": (json, "dumps"), "hugging face": (safetensors.numpy, "save_file"),
              "figure": (__import__("matplotlib.figure", fromlist=["Figure"]).Figure, "savefig")}[what]
    monkeypatch.setattr(*target, broken)
    with pytest.raises(OSError, match="disk full"):
        save(1)                                                                 # different content, failing
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before      # unchanged, no temporary left
