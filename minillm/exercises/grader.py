"""``minillm exercises check``: grade a workspace, one separate process per exercise file.

Student code is untrusted in the ordinary sense: it may loop forever, crash the interpreter,
allocate without end or raise anything. Each file therefore runs in its own process (runner.py)
with a wall-clock limit and an address-space limit, from a temporary working folder, without
bytecode files; whatever happens is reported for that exercise and the others are still graded.
The workspace's files are only read. This is isolation, not a security sandbox: the code runs
with the user's rights, so a course grading strangers' files runs the grader in a container
(as Gradescope does).
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import minillm

from ..files import written_whole
from .catalog import select
from .harness import NOT_DONE
from .runner import result_of

TIME_LIMIT_S = 30
MEMORY_LIMIT_MB = 4096


def _environment():
    """The child's environment: NumPy and the lesson code (no kernels, no Numba), one BLAS thread (the
    arrays are tiny and several children run at once), no bytecode, minillm importable from any folder."""
    env = dict(os.environ, MINILLM_BACKEND="numpy", MINILLM_KERNELS="plain", MINILLM_NUMBA="0",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    root = str(Path(minillm.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _failure(name, message):
    return result_of(name, "error", message, [])


def grade_in_process(name, path, time_limit=TIME_LIMIT_S, memory_mb=MEMORY_LIMIT_MB):
    """Run runner.py on one file in a child process; the result dict, or an "error" one saying what
    ended the process (time limit, signal, exit code)."""
    with tempfile.TemporaryDirectory(prefix="minillm-grade-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "minillm.exercises.runner", name, str(Path(path).resolve()), str(out),
                   str(memory_mb)]
        try:
            done = subprocess.run(command, cwd=tmp, env=_environment(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace", timeout=time_limit)
        except subprocess.TimeoutExpired:
            return _failure(name, f"stopped after the time limit of {time_limit} s (an endless loop?)")
        if out.exists():
            return json.loads(out.read_text(encoding="utf-8"))
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        if done.returncode < 0:
            return _failure(name, f"the process was killed by signal {-done.returncode} (a crash, or out of "
                                  f"memory with a limit of {memory_mb} MB): {last}")
        return _failure(name, f"the process ended with exit code {done.returncode} before reporting: {last}")


def check(folder, only=None, json_path=None, time_limit=TIME_LIMIT_S, memory_mb=MEMORY_LIMIT_MB, jobs=None):
    """Grade ``folder``; returns the result dicts in course order. Writes the Gradescope JSON to
    ``json_path`` when given. FileNotFoundError when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"workspace {folder} is not a folder (create one with: minillm exercises start "
                                f"{folder})")
    exercises = select(only)
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda e: grade_in_process(e.name, folder / f"{e.name}.py", time_limit, memory_mb),
                                exercises))
    if json_path is not None:
        write_gradescope(results, json_path)
    return results


def hint_of(result):
    """The one line a student reads first: the load error, or the first failed test's message."""
    if result["message"]:
        return result["message"]
    for test in result["tests"]:
        if not test["passed"]:
            return f"{test['name']}: {test['message']}"
    return ""


def _max_error(result):
    errors = [t["error"] for t in result["tests"] if t["error"] is not None and not math.isnan(t["error"])]
    return max(errors) if errors else float("nan")


def format_table(results, width=110):
    """exercise | tests passed | max rel. error | hint, one row per exercise (the hint wrapped to
    ``width`` columns), then the total."""
    lines = [f"{'exercise':<18} {'passed':>7} {'max rel. err':>12}  hint", f"{'-' * 18} {'-' * 7} {'-' * 12}  {'-' * 30}"]
    indent = " " * 42
    for r in results:
        passed = sum(t["passed"] for t in r["tests"])
        error = _max_error(r)
        hint = "done" if r["status"] == "passed" else hint_of(r)
        if r["status"] == NOT_DONE:
            hint = "not done: the starter still raises NotImplementedError"
        wrapped = textwrap.wrap(hint, max(30, width - len(indent))) or [""]
        lines.append(f"{r['name']:<18} {passed:>3}/{len(r['tests']) or '-':<3} "
                     f"{'-' if math.isnan(error) else f'{error:.1e}':>12}  {wrapped[0]}")
        lines += [indent + more for more in wrapped[1:]]
    done = sum(r["status"] == "passed" for r in results)
    lines.append(f"{done} of {len(results)} exercises done")
    return "\n".join(lines)


def gradescope(results):
    """The Gradescope autograder results: {"score", "tests": [{"name", "score", "max_score", "output"}]},
    one entry per exercise, scored by its tests passed (an exercise that could not run scores 0 of 1)."""
    tests = []
    for r in results:
        total = len(r["tests"]) or 1
        passed = sum(t["passed"] for t in r["tests"])
        report = [f"{'PASS' if t['passed'] else 'FAIL'}  {t['name']}" + ("" if t["passed"] else f"\n      {t['message']}")
                  for t in r["tests"]]
        output = "\n".join(([r["message"]] if r["message"] else []) + report)
        tests.append({"name": r["name"], "score": passed, "max_score": total, "output": output})
    return {"score": sum(t["score"] for t in tests), "tests": tests}


def write_gradescope(results, path):
    """Write gradescope(results) to ``path`` whole (a temporary file renamed into place)."""
    path = Path(path)
    with written_whole(path) as tmp:
        tmp.write_text(json.dumps(gradescope(results), indent=2) + "\n", encoding="utf-8")
