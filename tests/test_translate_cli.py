"""`minillm train --model seq2seq` and `minillm translate` as a user meets them, bad input included."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minillm.cli import main

WORDS = "ant bee cat dog eel fox gnu hen".split()
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "8", "--max-steps", "30",
        "--eval-interval", "15", "--eval-batches", "2", "--warmup-steps", "10", "--dropout", "0", "--threads", "1",
        "--block-size", "16"]


def pairs_file(path, n=600):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        lines.append(" ".join(words) + "\t" + " ".join(reversed(words)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq")
    pairs_file(root / "pairs.tsv")
    assert main(["train", "--model", "seq2seq", "--data", str(root / "pairs.tsv"), "--out", str(root / "s2s")]
                + TINY) == 0
    assert main(["train", "--data", str(root / "pairs.tsv"), "--out", str(root / "gpt"), "--n-layer", "1",
                 "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--max-steps", "2",
                 "--eval-interval", "2", "--eval-batches", "1"]) == 0
    return root


def run(*args):
    out = subprocess.run([sys.executable, "-m", "minillm.cli", *args], capture_output=True, text=True)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_training_writes_a_checkpoint_and_the_test_scores(run_dir):
    scores = json.loads((run_dir / "s2s" / "scores.json").read_text())
    assert set(scores) >= {"baseline", "greedy", "beam 4"} and scores["step"] == 30
    assert all(0 <= scores[k]["f1"] <= 1 for k in ("baseline", "greedy", "beam 4"))


def test_translate_prints_one_output_or_the_n_best_with_scores(run_dir, capsys, tmp_path):
    ckpt = str(run_dir / "s2s")
    assert main(["translate", "--ckpt", ckpt, "ant bee cat"]) == 0
    assert capsys.readouterr().out.count("\n") == 1            # one line, even when the output is empty
    assert main(["translate", "--ckpt", ckpt, "--beam", "3", "--length-penalty", "0.6", "ant bee cat"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [float(r[1]) for r in rows] == sorted((float(r[1]) for r in rows), reverse=True)
    (tmp_path / "in.txt").write_text("ant bee\ncat dog eel\n")
    assert main(["translate", "--ckpt", ckpt, "--file", str(tmp_path / "in.txt"), "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("# ") == 2 and out.count("\n1\t") + out.startswith("1\t") >= 1


def test_a_long_source_is_cut_with_a_note(run_dir, capsys):
    assert main(["translate", "--ckpt", str(run_dir / "s2s"), " ".join(["ant"] * 40)]) == 0
    assert "has 40 tokens; only the first 16 (the encoder's positions) are read" in capsys.readouterr().err


@pytest.mark.parametrize("args, code, message", [
    (["translate", "--ckpt", "RUN/s2s", ""], 2, "the source text is empty"),
    (["translate", "--ckpt", "RUN/s2s", "   "], 2, "the source text is empty"),
    (["translate", "--ckpt", "RUN/s2s"], 2, "give either a TEXT or --file F"),
    (["translate", "--ckpt", "RUN/s2s", "--file", "RUN/blank.txt"], 2, "line 2 is empty"),
    (["translate", "--ckpt", "RUN/s2s", "--beam", "0", "ant"], 2, "argument --beam: must be a positive integer, got 0"),
    (["translate", "--ckpt", "RUN/s2s", "--beam", "5000", "ant"], 2, "--beam 5000 is larger than the target vocabulary"),
    (["translate", "--ckpt", "RUN/s2s", "--length-penalty", "-1", "ant"], 2, "--length-penalty must be a finite number >= 0"),
    (["translate", "--ckpt", "RUN/gpt", "ant"], 1, "holds a 'gpt' model; this command needs 'seq2seq'"),
    (["generate", "--ckpt", "RUN/s2s", "--prompt", "ant"], 1, "holds an encoder-decoder ('seq2seq'), which `minillm translate"),
    (["translate", "--ckpt", "RUN/nowhere", "ant"], 1, "no checkpoint at"),
    (["train", "--model", "seq2seq", "--tokenizer", "bpe"], 2, "seq2seq reads both sides with one word vocabulary"),
    (["train", "--model", "seq2seq", "--data", "RUN/bad.tsv", "--out", "RUN/bad"], 1, "line 2: expected 'source<TAB>target'"),
])
def test_bad_input_is_one_line_naming_the_problem(run_dir, args, code, message):
    (run_dir / "blank.txt").write_text("ant\n\nbee\n")
    (run_dir / "bad.tsv").write_text("ant\tbee\nno tab here\n")
    out = run(*[a.replace("RUN", str(run_dir)) for a in args])
    assert out.returncode == code, out.stderr
    last = out.stderr.strip().splitlines()[-1]             # argparse's usage lines come before it
    assert last.startswith("minillm") and message in last, out.stderr
    if code == 1:
        assert out.stderr.count("\n") == 1, out.stderr


def test_a_seq2seq_run_resumes_from_its_checkpoint(run_dir, tmp_path, capsys):
    import shutil
    shutil.copytree(run_dir / "s2s", tmp_path / "s2s")
    args = ["train", "--model", "seq2seq", "--data", str(run_dir / "pairs.tsv"), "--out", str(tmp_path / "s2s")]
    longer = [{"30": "34"}.get(a, a) for a in TINY]                 # --max-steps 34 instead of 30
    assert main(args + longer + ["--resume"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert json.loads((tmp_path / "s2s" / "scores.json").read_text())["step"] == 34
