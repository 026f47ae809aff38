"""Grade one exercise file: the process the grader starts for each student file.

    python -m minillm.exercises.runner NAME FILE RESULT.json [MEMORY_MB]

It limits its own memory (where the system allows), loads FILE as a module without writing
bytecode next to it, runs the exercise's tests and writes the result as JSON. A crash, a time-out
or a memory error of the student's code then ends this process only; grader.py reports it.
``grade_exercise`` does the same in the calling process (the tests of the grader use it).
"""
import importlib.util
import json
import sys
from pathlib import Path

from .catalog import BY_NAME
from .harness import NOT_DONE, Outcome, plain_kernels, raised, run_test


def load_student(path, name):
    """FILE as a module; ValueError with a one-line reason when it cannot be loaded."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name} is missing (minillm exercises start writes it)")
    spec = importlib.util.spec_from_file_location(f"minillm_exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True    # the workspace stays as it is
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ValueError(f"syntax error at line {e.lineno} of {path.name}: {e.msg}") from None
    except Exception as e:
        raise ValueError(f"importing {path.name} {raised(e, path)}") from None
    finally:
        sys.dont_write_bytecode = old
    return module


def grade_exercise(name, path):
    """{"name", "status", "message", "tests": [Outcome as dict]} for the exercise ``name`` in ``path``.

    status: "passed" (every test), "failed", "not done" (every test meets NotImplementedError) or
    "error" (the file could not be loaded or lacks a function; no test ran)."""
    exercise = BY_NAME[name]
    try:
        student = load_student(path, name)
    except ValueError as e:
        return result_of(name, "error", str(e), [])
    missing = [f for f in exercise.functions if not callable(getattr(student, f, None))]
    if missing:
        return result_of(name, "error", f"{Path(path).name} defines no function {', '.join(missing)}", [])
    with plain_kernels():
        outcomes = [run_test(test_name, test, path) for test_name, test in exercise.tests(student)]
    if all(o.passed for o in outcomes):
        status = "passed"
    elif all(o.message.startswith(NOT_DONE) for o in outcomes):
        status = NOT_DONE
    else:
        status = "failed"
    return result_of(name, status, "", outcomes)


def result_of(name, status, message, outcomes):
    """The result dict of one exercise, as runner.py writes it and grader.py reads it."""
    return {"name": name, "status": status, "message": message, "tests": [o._asdict() for o in outcomes]}


def outcomes_of(result):
    """The Outcome tuples of a result dict."""
    return [Outcome(**t) for t in result["tests"]]


def limit_memory(megabytes):
    """Cap this process's address space; False where the system has no such limit (Windows has no
    ``resource`` module, and macOS refuses most RLIMIT_AS values): the time limit still applies."""
    try:
        import resource
        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        return True
    except (ImportError, ValueError, OSError):
        return False


def main(argv):
    name, path, out = argv[:3]
    if len(argv) > 3:
        limit_memory(argv[3])
    try:
        result = grade_exercise(name, path)
    except MemoryError:
        result = result_of(name, "error", f"ran out of memory (the limit is {argv[3] if len(argv) > 3 else '?'} MB)", [])
    Path(out).write_text(json.dumps(result, allow_nan=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
