"""The classroom exercises: starters score nothing, solutions score everything, planted mistakes
fail with the right hint, and student code that loops, crashes or lies is contained."""
import ast
import hashlib
import inspect
import json
import subprocess
import sys

import pytest

from minillm import exercises
from minillm.exercises import catalog, grader
from minillm.exercises.runner import grade_exercise
from minillm.exercises.workspace import file_text, lesson_object, solution_source


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solved")
    exercises.solve(folder)
    return folder


def cli(*args, cwd=None):
    out = subprocess.run([sys.executable, "-m", "minillm.cli", "exercises", *args], capture_output=True, text=True,
                         cwd=cwd)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    return out


def digest(folder):
    """Every file under folder (names and bytes): the grader must leave it exactly as it was."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()} | {"dirs": str(sorted(str(p) for p in folder.rglob("*") if p.is_dir()))}


def test_at_least_fourteen_exercises_each_mirroring_a_library_function():
    assert len(catalog.EXERCISES) >= 14
    for e in catalog.EXERCISES:
        assert e.statement.strip() and e.functions and set(e.needs) <= set(catalog.BY_NAME)
        before = [x.name for x in catalog.EXERCISES[:catalog.EXERCISES.index(e)]]
        assert set(e.needs) <= set(before), f"{e.name} needs an exercise that comes later"


def test_done_when_start_then_check_fails_and_solve_then_check_scores_full_marks(tmp_path):
    w = tmp_path / "w"
    assert cli("start", str(w)).returncode == 0
    assert {p.name for p in w.iterdir()} == {f"{e.name}.py" for e in catalog.EXERCISES} | {"README.md"}
    out = cli("check", str(w))
    assert out.returncode == 1
    assert out.stdout.count("not done") == len(catalog.EXERCISES), out.stdout
    assert cli("solve", str(w)).returncode == 0
    out = cli("check", str(w), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["tests"]) == len(catalog.EXERCISES)
    assert report["score"] == sum(t["max_score"] for t in report["tests"]) > 4 * len(catalog.EXERCISES)
    assert all(set(t) == {"name", "score", "max_score", "output"} and t["score"] == t["max_score"]
               for t in report["tests"])


def test_starters_keep_the_signatures_and_reveal_no_solution():
    for e in catalog.EXERCISES:
        starter, solution = file_text(e, solved=False), file_text(e, solved=True)
        compile(starter, e.name, "exec")
        assert starter.count("raise NotImplementedError") == len(e.lesson)
        assert "dispatch" not in solution and "kernel" not in solution
        for module, qualname in e.lesson:
            obj = lesson_object(module, qualname)
            assert f"def {obj.__name__}{inspect.signature(obj)}:".replace(" ", "") in starter.replace(" ", "")
            code = solution_code_lines(solution_source(obj))
            assert code and not [line for line in code if line in starter], (e.name, qualname)


def solution_code_lines(source):
    """The stripped lines of a function's body, its docstring left out."""
    body = ast.parse(source).body[0].body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    lines = source.splitlines()
    return [line.strip() for stmt in body for line in lines[stmt.lineno - 1:stmt.end_lineno] if len(line.strip()) > 8]


def test_start_and_solve_never_overwrite_a_students_work(tmp_path):
    w = tmp_path / "w"
    exercises.start(w, "linear")
    with pytest.raises(FileExistsError, match="linear.py already exists"):
        exercises.start(w, "linear")
    exercises.solve(w, "linear")                            # the untouched starter may be replaced
    (w / "linear.py").write_text((w / "linear.py").read_text() + "\n# my notes\n")
    with pytest.raises(FileExistsError, match="linear.py has been edited"):
        exercises.solve(w, "linear")
    assert (w / "linear.py").read_text().endswith("# my notes\n")
    out = cli("start", str(w), "--only", "linear")
    assert out.returncode == 2 and out.stderr.startswith("minillm: error: ") and "already exists" in out.stderr


def test_bad_arguments_are_one_line_errors(tmp_path):
    out = cli("check", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "is not a folder" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = cli("start", str(tmp_path / "w"), "--only", "linear,softmaxx")
    assert out.returncode == 2 and "'softmaxx'" in out.stderr and "linear, embedding" in out.stderr
    assert cli("check", str(tmp_path), "--time-limit", "0").returncode == 2
    listing = cli("list")
    assert listing.returncode == 0 and all(e.name in listing.stdout for e in catalog.EXERCISES)


# ---------------------------------------------------------------------------- planted mistakes
# (exercise, text of the reference solution, what the student wrote instead, words the hint must contain)
PLANTED = [
    ("linear", "dweight = d2.T @ x2", "dweight = x2.T @ d2", "transposed"),
    ("linear", "d2.sum(axis=0) if has_bias", "d2.mean(axis=0) if has_bias", "mean where sum was meant"),
    ("embedding", "xp.add.at(dweight, idx.reshape(-1), dout.reshape(-1, weight_shape[1]))",
     "dweight[idx.reshape(-1)] += dout.reshape(-1, weight_shape[1])", "repeated id"),
    ("embedding", "dweight[padding_idx] = 0", "pass", "padding row"),
    ("softmax", "return p * (dout - (dout * p).sum(axis=axis, keepdims=True))", "return p * (1 - p) * dout",
     "diagonal of the softmax Jacobian"),
    ("softmax", "(dout * p).sum(axis=axis", "(dout * p).sum(axis=-1", "cache.axis"),
    ("cross_entropy", "(valid * (dloss / count))", "(valid * dloss)", "missing 1/N"),
    ("cross_entropy", "(valid * (dloss / count))", "(dloss / count + 0 * valid)", "ignores the mask"),
    ("cross_entropy", "dz = xp.exp(logp)", "dz = logp\n    xp.exp(dz, out=dz)", "in place"),
    ("gelu", "0.5 * (1.0 + tanh_u) + ", "", "product rule"),
    ("layer_norm", "\n                 - dxhat.mean(axis=-1, keepdims=True)", "", "through the mean"),
    ("layer_norm", "\n                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))", ")", "through rstd"),
    ("layer_norm", "dweight = (dout * xhat).sum(", "dweight = (dout * xhat).mean(", "mean where sum was meant"),
    ("layer_norm", "dxhat = dout * weight", "dxhat = (dout * weight).astype('float32')", "float32 where float64"),
    ("dropout", "return dout * mask * scale", "return dout * mask", "missing 1/(1 - p)"),
    ("positional", "table[:, 0::2] = np.sin(pos * freq)\n    table[:, 1::2] = np.cos(pos * freq[: dim // 2])",
     "table[:, 0::2] = np.cos(pos * freq)\n    table[:, 1::2] = np.sin(pos * freq[: dim // 2])", "even columns"),
    ("positional", "return dout, dout.sum(axis=0)", "return dout, dout", "sum over the leading axis"),
    ("attention", "dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))",
     "dscores = probs * (1 - probs) * dprobs", "diagonal of the softmax Jacobian"),
    ("attention", "dq = (dscores @ k) * scale", "dq = dscores @ k", "carry the factor scale"),
    ("attention", "    if allowed is not None:\n        scores = xp.where(", "    if False:\n        scores = xp.where(",
     "the mask is ignored"),
    ("multi_head", "return x.reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3)",
     "return x.reshape(B, num_heads, T, C // num_heads)", "a reshape to (B, H, T, D) alone"),
    ("transformer_block", "dh = dy + self.norm2.backward", "dh = self.norm2.backward", "branch of the residual"),
    ("gpt_backward", "    self.wte.weight.grad += dwte", "    pass", "tied weight"),
    ("lstm_cell", "dc_total = dc_next + dh_next * o * (1 - tanh_c ** 2)", "dc_total = dc_next",
     "c' reaches the loss directly"),
    ("lstm_cell", "da.T @ x, da.T @ h", "x.T @ da, h.T @ da", "transposed"),
    ("bptt", "lstm_cell_backward(dh + dy[:, t], dc", "lstm_cell_backward(dh, dc", "h_t feeds both"),
    ("bptt", "total = grads if total is None else [a + b for a, b in zip(total, grads)]", "total = grads",
     "summed over t, not overwritten"),
    ("bptt", "dx = xp.stack(dxs[::-1], axis=1)", "dx = xp.stack(dxs, axis=1)", "must line up with x"),
    ("adamw", "bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t", "bc1, bc2 = 1.0, 1.0", "bias correction is missing"),
    ("adamw", "    if wd and self.decoupled:\n        p.data *= 1.0 - lr * wd",
     "    if False:\n        p.data *= 1.0 - lr * wd", "AdamW decays the weights directly"),
    ("bpe_merge", "            i += 2", "            i += 1 if i + 2 < len(ids) and (ids[i + 1], ids[i + 2]) == pair else 2",
     "do not overlap"),
    ("top_p", "drop_sorted = cum - p >= top_p", "drop_sorted = cum >= top_p", "crosses top_p"),
    ("top_p", "logits = logits.copy()", "logits = logits", "in place"),
    ("kv_cache", "cache.k[:, :, start:start + T], cache.v[:, :, start:start + T] = k, v",
     "cache.k[:, :, :T], cache.v[:, :, :T] = k, v", "an overwritten cache"),
    ("kv_cache", "(start + xp.arange(T))[:, None]", "xp.arange(T)[:, None]", "sits at position cache.length + i"),
]


@pytest.mark.parametrize("name, right, wrong, hint", PLANTED, ids=[f"{p[0]}-{i}" for i, p in enumerate(PLANTED)])
def test_a_planted_mistake_fails_with_its_hint(tmp_path, solved, name, right, wrong, hint):
    text = (solved / f"{name}.py").read_text()
    assert text.count(right) == 1, f"the solution of {name} no longer contains {right!r}"
    path = tmp_path / f"{name}.py"
    path.write_text(text.replace(right, wrong))
    result = grade_exercise(name, path)
    assert result["status"] == "failed"
    assert hint in grader.hint_of(result), grader.hint_of(result)


def test_the_planted_mistakes_cover_every_kind_the_checker_names():
    assert len(PLANTED) >= 20
    hints = " ".join(p[3] for p in PLANTED)
    for kind in ("transposed", "missing 1/N", "mean where sum was meant", "branch of the residual", "tied weight",
                 "diagonal of the softmax Jacobian", "ignores the mask", "an overwritten cache", "in place",
                 "float32 where float64"):
        assert kind in hints


def test_each_solution_passes_in_process(solved):
    for e in catalog.EXERCISES:
        result = grade_exercise(e.name, solved / f"{e.name}.py")
        assert result["status"] == "passed", (e.name, grader.hint_of(result))


# ---------------------------------------------------------------------------- untrusted code
SABOTAGE = {
    "linear": ("    x2, weight, has_bias, x_shape = cache", "    while True:\n        pass"),
    "embedding": ("    idx, weight_shape = cache", "    import os\n    os.abort()"),
    "softmax": ("def softmax_backward(dout, cache):", "def softmax_backward(dout, cache)"),
    "gelu": ("    approximate, x, saved = cache", "    raise KeyError('oops')"),
    "dropout": ("def dropout_backward(dout, cache):", "def dropout_backward_renamed(dout, cache):"),
    "layer_norm": ("    return dx, dweight, dbias", "    return dx, dweight"),
    "positional": ("    pos = np.arange", "    big = bytearray(3 * 1024 ** 3)\n    pos = np.arange"),
}


def test_loops_crashes_errors_and_lies_are_reported_and_the_rest_still_graded(tmp_path, solved):
    w = tmp_path / "w"
    w.mkdir()
    for name in list(SABOTAGE) + ["cross_entropy"]:
        text = (solved / f"{name}.py").read_text()
        if name in SABOTAGE:
            right, wrong = SABOTAGE[name]
            assert text.count(right) == 1, name
            text = text.replace(right, wrong)
        (w / f"{name}.py").write_text(text)
    before = digest(w)
    results = {r["name"]: r for r in exercises.check(w, list(SABOTAGE) + ["cross_entropy"], time_limit=8,
                                                     memory_mb=1536)}
    assert digest(w) == before, "the grader changed the workspace"
    hints = {name: grader.hint_of(r) for name, r in results.items()}
    assert "time limit of 8" in hints["linear"]
    assert "killed by signal" in hints["embedding"]
    assert "syntax error at line" in hints["softmax"] and "softmax.py" in hints["softmax"]
    assert "raised KeyError" in hints["gelu"] and "line" in hints["gelu"] and "gelu.py" in hints["gelu"]
    assert "defines no function dropout_backward" in hints["dropout"]
    assert "returned 2 value(s), expected 3" in hints["layer_norm"]
    if sys.platform.startswith("linux"):
        assert "MemoryError" in hints["positional"]
    assert results["cross_entropy"]["status"] == "passed"
    table = exercises.format_table(list(results.values()))
    assert "1 of 8 exercises done" in table


def test_a_wrong_return_shape_is_named(tmp_path, solved):
    text = (solved / "linear.py").read_text().replace("    return dx, dweight, dbias", "    return dx, dweight.T, dbias")
    (tmp_path / "linear.py").write_text(text)
    hint = grader.hint_of(grade_exercise("linear", tmp_path / "linear.py"))
    assert "dweight has shape (3, 5), expected (5, 3)" in hint and "transposed" in hint


def test_the_cli_check_runs_from_inside_the_workspace(solved):
    out = cli("check", ".", "--only", "bpe_merge", cwd=solved)
    assert out.returncode == 0 and "1 of 1 exercises done" in out.stdout
