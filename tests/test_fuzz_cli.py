"""Random argument lists for the `minillm` command (hypothesis).

Each case is a subcommand, a few safe options that keep a run short (1-3 steps, tiny models, a
temporary working folder), then random options with random values: numbers out of range, NaN,
huge sizes, words, empty strings, missing files, folders, files that are not checkpoints. The
command must end with exit code 0, 1 or 2; when it fails, its last line is one
``minillm...: error: ...`` line from an error it raised on purpose (never the boundary's
"set MINILLM_DEBUG=1" line for an unexpected exception, never a traceback), and a checkpoint
that was in the way is byte-identical afterwards unless --resume asked to continue it.
"""
import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from minillm.cli import main  # noqa: E402
from minillm.models import config_checks  # noqa: E402

EXAMPLES = int(os.environ.get("MINILLM_FUZZ_EXAMPLES", 100))
TEXT = "".join(f"def f{i}(x):\n    return x * {i % 9} + len('abc')\n" for i in range(60))

# (good values, bad values) per kind of option; a drawn value is good three times in four, so that
# runs get past the parser often, and bad (out of range, NaN, not a number, huge) the rest
BAD = ["-1", "0", "nan", "inf", "-inf", "2.5", "abc", "", " ", "ü", "0x10"]
COUNTS = (["1", "2", "3"], BAD + ["1e-320"])
SIZES = (["1", "2", "8", "16"], BAD + ["10**12", "1000000000000", "999999999999999999999"])
REALS = (["1e-3", "0.1", "0.5", "1.0", "1e-320"], BAD + ["1e400", "-0.0", "1e308"])

SAFE = {   # prepended: short runs unless the random part overrides them
    "train": ["--max-steps", "2", "--eval-interval", "1", "--eval-batches", "1", "--n-layer", "1", "--n-head", "2",
              "--n-embd", "8", "--hidden-size", "8", "--block-size", "8", "--batch-size", "2", "--data", "text.txt",
              "--vocab-size", "260", "--max-seconds", "5"],
    "generate": ["--max-new-tokens", "3", "--prompt", "de"],
    "fill-mask": ["--top", "2"],
    "classify": ["--max-steps", "2", "--batch-size", "2", "--max-len", "8", "--train-examples", "8"],
    "plot-attention": ["--text", "de"],
}
OPTIONS = {
    "train": {"--model": ["gpt", "bert", "lstm", "rnn", ""], "--data": "PATHS", "--tokenizer": ["char", "bpe", "x"],
              "--vocab-size": SIZES, "--n-layer": SIZES, "--n-head": SIZES, "--n-embd": SIZES,
              "--hidden-size": SIZES, "--block-size": SIZES, "--batch-size": SIZES, "--dropout": REALS,
              "--lr": REALS, "--weight-decay": REALS, "--warmup-steps": COUNTS, "--max-steps": COUNTS,
              "--max-seconds": COUNTS, "--eval-interval": COUNTS, "--eval-batches": COUNTS, "--out": "PATHS",
              "--seed": COUNTS, "--backend": ["numpy", "cupy", "gpu"], "--threads": COUNTS, "--resume": None},
    "generate": {"--ckpt": "PATHS", "--pretrained": "PATHS", "--prompt": ["", "de", "\x00", "é" * 3, "[MASK]"],
                 "--max-new-tokens": COUNTS, "--temperature": REALS, "--top-k": COUNTS, "--top-p": REALS,
                 "--greedy": None, "--no-cache": None, "--seed": COUNTS},
    "fill-mask": {"--ckpt": "PATHS", "--pretrained": "PATHS", "--top": COUNTS,
                  "TEXT": ["a [MASK] b", "[MASK]", "no mask", "", "[MASK]" * 20]},
    "classify": {"--ckpt": "PATHS", "--from-scratch": None, "--max-steps": COUNTS, "--batch-size": COUNTS,
                 "--lr": REALS, "--max-len": COUNTS, "--train-examples": COUNTS, "--seed": COUNTS, "--out": "PATHS"},
    "plot-attention": {"--ckpt": "PATHS", "--text": ["", "de", "x" * 50, "\x00"], "--out": "PATHS"},
}
PATHS = ["gpt", "bert", "lstm", "missing", "text.txt", "empty.txt", "binary.bin", "folder", "fresh", "gpt2", "out.png"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Trained tiny checkpoints and some files that are not what the options expect."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "text.txt").write_text(TEXT)
    (root / "empty.txt").write_text("")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "folder").mkdir()
    tiny = SAFE["train"] + ["--max-steps", "3", "--data", str(root / "text.txt")]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for model in ("gpt", "bert", "lstm"):
            assert main(["train", "--model", model, "--out", str(root / model)] + tiny) == 0
    try:
        from minillm import hub
        from minillm.models import GPT, GPTConfig
        hub.save_gpt2(GPT(GPTConfig(vocab_size=261, block_size=16, n_layer=1, n_head=2, n_embd=8)), root / "gpt2")
    except ImportError:                  # without safetensors the name stays a missing folder
        pass
    return root


@st.composite
def argument_lists(draw):
    """[command, safe options..., random options...] with each random value drawn for its option."""
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command] + SAFE[command]
    for _ in range(draw(st.integers(0, 5))):
        option = draw(st.sampled_from(sorted(OPTIONS[command])))
        values = OPTIONS[command][option]
        if values is None:
            argv.append(option)
            continue
        if values == "PATHS":
            values = (PATHS, PATHS)
        elif isinstance(values, list):                # words: any of them
            values = (values, values)
        value = draw(st.sampled_from(values[0] if draw(st.integers(0, 3)) else values[1]))
        argv += [value] if option == "TEXT" else [option, value]
    if command == "fill-mask" and not any("MASK" in a or a in ("", "no mask") for a in argv[1:]):
        argv.append("a [MASK] b")                       # its one positional argument
    if draw(st.integers(0, 4)) and command != "train":   # the source every model command needs
        argv += ["--ckpt", draw(st.sampled_from(["gpt", "bert", "lstm"]))]
    return argv


def in_workspace(argv, folder):
    """The argument list with workspace names made paths inside ``folder`` (a fresh copy of the workspace)."""
    names = set(PATHS)
    return [str(folder / a) if a in names else a for a in argv]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=argument_lists())
def test_random_command_lines_end_cleanly(workspace, argv):
    folder = Path(tempfile.mkdtemp())
    here = os.getcwd()
    limit = config_checks.MAX_PARAMETERS
    try:
        shutil.copytree(workspace, folder, dirs_exist_ok=True)
        before = {name: (folder / name / "ckpt.npz").read_bytes() for name in ("gpt", "bert", "lstm")}
        argv = in_workspace(argv, folder)
        os.chdir(folder)                                  # runs/ and default outputs land here
        config_checks.MAX_PARAMETERS = 2_000_000          # every model the fuzzer may build stays small
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as e:                       # argparse: usage errors and --help
                code = e.code
        text = err.getvalue()
        hypothesis.event(f"{argv[0]} exit {code}")        # --hypothesis-show-statistics: how often each ends how
        assert code in (0, 1, 2), (argv, code, text)
        assert "Traceback" not in text, (argv, text)
        if code:
            last = text.strip().splitlines()[-1]
            assert last.startswith("minillm") and ": error: " in last, (argv, text)
            assert "MINILLM_DEBUG" not in last, (argv, last)   # an exception minillm did not raise on purpose
        if "--resume" not in argv:
            for name, data in before.items():
                assert (folder / name / "ckpt.npz").read_bytes() == data, (argv, f"{name}/ckpt.npz changed")
    finally:
        config_checks.MAX_PARAMETERS = limit
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)
