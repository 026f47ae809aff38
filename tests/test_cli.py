"""The command line as a user meets it: train, generate with every option, fill-mask, classify, bad input."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minillm.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CONVERGENCE = BENCHMARKS / "convergence.py"

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 9} + len('abc')\n" for i in range(400))
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-interval", "10", "--eval-batches", "2", "--max-steps", "20"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    (root / "code.txt").write_text(TEXT)
    data = str(root / "code.txt")
    for model, extra in (("gpt", []), ("lstm", ["--hidden-size", "16"]), ("bert", [])):
        assert main(["train", "--model", model, "--data", data, "--out", str(root / model)] + TINY + extra) == 0
    assert main(["train", "--data", data, "--tokenizer", "bpe", "--vocab-size", "300", "--out", str(root / "bpe")]
                + TINY) == 0
    assert main(["train", "--model", "bert", "--data", data, "--tokenizer", "bpe", "--vocab-size", "300",
                 "--out", str(root / "bert-bpe")] + TINY) == 0
    return root


def run(*args):
    out = subprocess.run([sys.executable, "-m", "minillm.cli", *args], capture_output=True, text=True)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_train_writes_checkpoint_log_curve_and_prints_a_sample(runs, capsys):
    for model in ("gpt", "lstm", "bert", "bpe"):
        assert {"ckpt.npz", "log.csv", "loss.png"} <= {p.name for p in (runs / model).iterdir()}


def test_train_ends_with_the_next_command_and_that_command_runs(runs, tmp_path, capsys):
    out = tmp_path / "run one"                                  # a space: the printed line must quote it
    assert main(["train", "--data", str(runs / "code.txt"), "--out", str(out)] + TINY[:-1] + ["3"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("next: minillm generate --ckpt ")
    import shlex
    args = shlex.split(last[len("next: minillm "):])
    assert main(args) == 0 and capsys.readouterr().out.startswith("def ")     # TEXT has no "The ": its first 4 characters


def test_bert_with_a_tiny_block_ends_with_a_fill_mask_example_that_fits(runs, tmp_path, capsys):
    out = tmp_path / "bert4"
    assert main(["train", "--model", "bert", "--data", str(runs / "code.txt"), "--out", str(out), "--block-size", "4",
                 "--max-steps", "3", "--eval-interval", "3", "--eval-batches", "1", "--n-embd", "8", "--n-head", "2",
                 "--n-layer", "1"]) == 0
    assert "mask at token" in capsys.readouterr().out


def test_version_and_defaults_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    import minillm
    assert capsys.readouterr().out.strip() == f"minillm {minillm.__version__}"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: gpt)", "(default: 2000; seq2seq: 100000)", "(default: 0.001)", "(default: 12; seq2seq: 32)"):
        assert default in text, default


@pytest.mark.parametrize("opts", [[], ["--greedy"], ["--temperature", "0.5"], ["--top-k", "5"], ["--top-p", "0.9"],
                                  ["--greedy", "--no-cache"], ["--seed", "3", "--top-k", "3", "--top-p", "0.8"]])
def test_generate_options(runs, capsys, opts):
    assert main(["generate", "--ckpt", str(runs / "gpt"), "--prompt", "def f", "--max-new-tokens", "12"] + opts) == 0
    assert capsys.readouterr().out.startswith("def f")


def test_generate_lstm_and_bpe(runs, capsys):
    for name in ("lstm", "bpe"):
        assert main(["generate", "--ckpt", str(runs / name), "--prompt", "return", "--max-new-tokens", "8"]) == 0
        assert capsys.readouterr().out.startswith("return")


def test_greedy_cache_and_no_cache_agree(runs, capsys):
    outs = []
    for extra in ([], ["--no-cache"]):
        main(["generate", "--ckpt", str(runs / "gpt"), "--prompt", "def f1", "--max-new-tokens", "30", "--greedy"] + extra)
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_long_prompt_is_cropped_and_said(runs, capsys):
    assert main(["generate", "--ckpt", str(runs / "gpt"), "--prompt", "x" * 40, "--max-new-tokens", "3"]) == 0
    assert "only the last 16 (block_size) are used" in capsys.readouterr().err


@pytest.mark.parametrize("ckpt", ["bert", "bert-bpe"])    # character and BPE tokens
def test_fill_mask_and_classify(runs, capsys, ckpt):
    assert main(["fill-mask", "--ckpt", str(runs / ckpt), "return [MASK] * 2", "--top", "3"]) == 0
    assert "mask at token" in capsys.readouterr().out
    assert main(["classify", "--ckpt", str(runs / ckpt), "--max-steps", "4", "--max-len", "16",
                 "--out", str(runs / f"cls-{ckpt}")]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy, BERT pretrained" in printed and f"checkpoint in {runs / f'cls-{ckpt}'}" in printed
    assert "perplexity" not in printed
    assert main(["classify", "--ckpt", str(runs / ckpt), "--max-steps", "2", "--max-len", "16", "--from-scratch",
                 "--train-examples", "8", "--out", str(runs / f"cls-few-{ckpt}")]) == 0
    assert "8 training / " in capsys.readouterr().out


def test_fill_mask_space_belongs_to_the_bpe_word(runs, capsys):
    # BPE training masks tokens like ' x' (space included), so "return [MASK] * 2" must put [MASK]
    # right after 'return', not after a lone ' ' token; the char tokenizer keeps the space as a token.
    from minillm.training.checkpoint import load_checkpoint
    from minillm.tokenizers import tokenizer_from_dict
    for ckpt, before in (("bert-bpe", "return"), ("bert", "return ")):
        tok = tokenizer_from_dict(load_checkpoint(runs / ckpt, expected_kind="bert")[0]["tokenizer"])
        mask_pos = 1 + len(tok.encode(before))                          # 1 for [CLS]
        assert main(["fill-mask", "--ckpt", str(runs / ckpt), "return [MASK] * 2", "--top", "1"]) == 0
        out = capsys.readouterr().out
        assert f"mask at token {mask_pos}:" in out, out
        assert out.rstrip().endswith("] * 2") and "->  return" in out, out   # the whole text, the guess in [ ]


def test_bert_transfer_benchmark_runs(runs):
    # benchmarks/bert_transfer.py, cut to two steps: the table it prints has both starts and a difference
    script = BENCHMARKS / "bert_transfer.py"
    out = subprocess.run([sys.executable, str(script), "--ckpt", str(runs / "bert"), "--seeds", "0,1",
                          "--train-examples", "8", "--steps", "2", "--eval-every", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "8 training docstrings: test accuracy, mean over seeds (each seed)" in lines
    assert [line.split()[0] for line in lines[-2:]] == ["1", "2"]


def _convergence_bench():
    import importlib.util
    spec = importlib.util.spec_from_file_location("convergence_bench", CONVERGENCE)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_convergence_benchmark_takes_turns_abba(monkeypatch):
    # benchmarks/convergence.py gives both sides the same share of a drifting machine: turns A B B A ...,
    # each turn ending at that side's cumulative share of the time (or, with --steps, of the steps)
    bench = _convergence_bench()
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    calls = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def train_until(self, seconds=None, steps=None):
            calls.append((self.name, seconds, steps))
    bench.take_turns([Fake("A"), Fake("B")], 4, seconds=120.0)
    assert calls == [("A", 30.0, None), ("B", 30.0, None), ("B", 60.0, None), ("A", 60.0, None),
                     ("A", 90.0, None), ("B", 90.0, None), ("B", 120.0, None), ("A", 120.0, None)]
    calls.clear()
    bench.take_turns([Fake("A"), Fake("B")], 2, steps=7)
    assert calls == [("A", None, 3), ("B", None, 3), ("B", None, 7), ("A", None, 7)]


def test_convergence_benchmark_steps_and_seed(monkeypatch):
    # --steps N makes exactly N steps per side; --seed S changes the initial weights, not the batches
    bench = _convergence_bench()
    monkeypatch.setattr(bench, "CFG", dict(n_layer=1, n_head=2, n_embd=8, block_size=8))
    train = np.arange(500) % 11
    a, again, b = (bench.MiniTrainer(train, 11, seed) for seed in (0, 0, 1))
    assert np.array_equal(a.model.wte.weight.data, again.model.wte.weight.data)
    assert not np.array_equal(a.model.wte.weight.data, b.model.wte.weight.data)
    a.train_until(steps=5)
    b.train_until(steps=5)
    assert a.steps == b.steps == 5
    assert np.array_equal(a.rng.integers(0, 100, 3), b.rng.integers(0, 100, 3))    # same batch stream


@pytest.mark.parametrize("args,message", [(["--steps", "0"], "--steps must be positive, got 0"),
                                          (["--slices", "-1"], "--slices must be positive, got -1")])
def test_convergence_benchmark_rejects_bad_counts(args, message):
    run = subprocess.run([sys.executable, str(CONVERGENCE)] + args, capture_output=True, text=True)
    assert run.returncode == 2 and message in run.stderr


def test_resume_continues(runs, capsys):
    assert main(["train", "--data", str(runs / "code.txt"), "--out", str(runs / "gpt"), "--resume"] + TINY[:-1]
                + ["30"]) == 0
    assert "after 30 steps" in capsys.readouterr().out


@pytest.mark.parametrize("args,code,message", [
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--top-p", "1.5"], 2, "must lie in (0, 1], got 1.5"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--top-p", "0"], 2, "must lie in (0, 1], got 0"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--temperature", "inf"], 2, "must be a finite number > 0, got inf"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--max-new-tokens", "-3"], 2, "must be a positive integer"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "日本"], 1, "not in the vocabulary"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", ""], 1, "the prompt is empty"),
    (["generate", "--ckpt", "CKPT/nowhere", "--prompt", "x"], 1, "no checkpoint at"),
    (["generate", "--ckpt", "CKPT/bert", "--prompt", "x"], 1, "holds a 'bert' model; this command needs 'gpt' or 'llama' or 'lstm'"),
    (["fill-mask", "--ckpt", "CKPT/gpt", "a [MASK]"], 1, "holds a 'gpt' model; this command needs 'bert'"),
    (["fill-mask", "--ckpt", "CKPT/bert", "no mask here"], 1, "contains no [MASK] token"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/gpt"], 2, "already holds a checkpoint"),
    (["train", "--data", "CKPT"], 1, "is a directory, not a text file"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/code.txt"], 2, "is a file; it must name a folder"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/model.npz"], 2, "looks like a file name; it must name a folder"),
    (["classify", "--ckpt", "CKPT/bert", "--out", "CKPT/bert"], 2, "already holds a checkpoint"),
    (["plot-attention", "--ckpt", "CKPT/gpt", "--text", "def", "--out", "CKPT/figure"], 2, "--out must name a .png file"),
    (["train", "--data", "CKPT/missing.txt", "--out", "CKPT/new"], 2, "does not exist"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/new2", "--resume"], 2, "--resume: no checkpoint at"),
    (["train", "--data", "CKPT/code.txt", "--n-embd", "30", "--n-head", "4"], 2, "not divisible by --n-head 4"),
    (["train", "--dropout", "1.2"], 2, "must lie in [0, 1), got 1.2"),
    (["train", "--threads", "13"], 2, "--threads 13 gives each thread at least one row of the batch, so it must be at most --batch-size (12)"),
    (["train", "--threads", "2", "--backend", "cupy"], 2, "with --backend cupy use --threads 1"),
    (["train", "--model", "rnn"], 2, "invalid choice: 'rnn'"),
    (["train", "--data", "CKPT/tiny.txt", "--out", "CKPT/t", "--block-size", "64"], 1, "fewer than block_size + 1"),
    (["train", "--data", "CKPT/empty.txt", "--out", "CKPT/e"], 1, "is empty"),
    (["train", "--data", "CKPT/latin1.txt", "--out", "CKPT/l"], 1, "is not valid UTF-8"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/code.txt/run"], 1, "cannot create the output folder"),
    (["generate", "--ckpt", "CKPT/broken", "--prompt", "x"], 1, "is truncated or corrupted"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--top-p", "0"], 2, "must lie in (0, 1], got 0"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--top-k", "0"], 2, "must be a positive integer"),
    (["plot-attention", "--ckpt", "CKPT/lstm", "--text", "def"], 1, "holds a 'lstm' model; this command needs 'gpt' or 'bert'"),
    (["plot-attention", "--ckpt", "CKPT/gpt", "--text", ""], 2, "--text is empty"),
    (["plot-attention", "--ckpt", "CKPT/gpt", "--text", "x" * 40], 2, "this model reads at most 16"),
    (["classify", "--ckpt", "CKPT/gpt"], 1, "holds a 'gpt' model; this command needs 'bert'"),
    (["classify", "--ckpt", "CKPT/bert", "--lr", "-1"], 2, "must be a finite number > 0, got -1"),
    (["classify", "--ckpt", "CKPT/bert", "--train-examples", "100000"], 1, "train examples must lie in [4, "),
    (["train", "--tokenizer", "bpe", "--vocab-size", "100"], 2, "--vocab-size must be at least 257 for byte-level BPE"),
    (["train", "--seed", "-1"], 2, "argument --seed: must be an integer >= 0, got -1"),
    (["generate", "--ckpt", "CKPT/gpt", "--prompt", "x", "--seed", "-5"], 2, "argument --seed: must be an integer >= 0"),
    (["train", "--data", "CKPT/code.txt", "--out", "CKPT/huge", "--batch-size", "100000000"], 1,
     "one training step on 100,000,000 x 64 tokens would hold about"),
])
def test_bad_input_one_line_error_and_exit_code(runs, args, code, message):
    (runs / "tiny.txt").write_text("short text")
    (runs / "empty.txt").write_text("")
    (runs / "latin1.txt").write_bytes("caf\xe9 " .encode("latin-1") * 50)
    broken = runs / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "ckpt.npz").write_bytes((runs / "gpt" / "ckpt.npz").read_bytes()[:2000])
    out = run(*[a.replace("CKPT", str(runs)) for a in args])
    assert out.returncode == code, out.stderr
    assert message in out.stderr, out.stderr
    assert "MINILLM_DEBUG" not in out.stderr, out.stderr      # an error raised on purpose, not a surprise
    if code == 1:
        assert out.stderr.strip().count("\n") == 0 or "minillm: error:" in out.stderr.splitlines()[-1]


@pytest.mark.parametrize("model", ["gpt", "bert"])
def test_plot_attention_writes_a_png(runs, tmp_path, model):
    png = tmp_path / f"{model}.png"
    out = run("plot-attention", "--ckpt", str(runs / model), "--text", "def f(x):", "--out", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stdout.startswith(f"wrote {png} ")


def test_plot_attention_writes_next_to_the_checkpoint_by_default(runs):
    out = run("plot-attention", "--ckpt", str(runs / "gpt"), "--text", "def")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {runs / 'gpt' / 'attention.png'} ")
    assert (runs / "gpt" / "attention.png").read_bytes()[:4] == b"\x89PNG"


def test_gradcheck_command_passes():
    out = run("gradcheck")
    assert out.returncode == 0 and "0 failed" in out.stdout
    assert "GPT" in out.stdout and "LSTM" in out.stdout and "BertForMaskedLM" in out.stdout


def test_generated_text_prints_on_a_narrow_terminal_encoding(runs):
    # a Windows code page or a pipe can hold fewer characters than the model writes: those are
    # escaped (\xdf), and the command still succeeds
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    out = subprocess.run([sys.executable, "-m", "minillm.cli", "generate", "--ckpt", str(runs / "bpe"),
                          "--prompt", "Straße", "--max-new-tokens", "3", "--greedy"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "Stra\\xdfe" in out.stdout


@pytest.mark.parametrize("error,expected", [
    (ZeroDivisionError("division by zero"), "minillm: error: ZeroDivisionError: division by zero (set MINILLM_DEBUG=1"),
    (KeyError("n_embd"), "minillm: error: KeyError: 'n_embd' (set MINILLM_DEBUG=1"),
    (MemoryError(), "minillm: error: out of memory (the arrays this command needs do not fit)"),
])
def test_any_exception_becomes_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, error, expected):
    from minillm.cli import commands

    def fail(args):
        raise error
    monkeypatch.setattr(commands, "run_gradcheck", fail)
    monkeypatch.delenv("MINILLM_DEBUG", raising=False)
    assert main(["gradcheck"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err
    monkeypatch.setenv("MINILLM_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["gradcheck"])


def test_sigterm_during_train_saves_and_prints_the_command_that_resumes(runs, tmp_path):
    import signal
    import time
    out = tmp_path / "stopped"
    args = ["train", "--data", str(runs / "code.txt")] + TINY[:-1] + ["100000", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "minillm.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.csv").exists() or (out / "log.csv").stat().st_size < 60:
        assert time.time() < deadline and proc.poll() is None, "training did not start"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("minillm: interrupted after step ") and f"checkpoint saved in {out}" in line, line
    command = line.split("To continue: ", 1)[1]
    import shlex
    resume = shlex.split(command)[1:]
    assert resume[-1] == "--resume"
    step = int(line.split("after step ")[1].split(";")[0])
    resume[resume.index("--max-steps") + 1] = str(step + 3)            # continue for three more steps
    assert main(resume) == 0
