"""The README and the notebooks point only at files that exist.

A renamed or deleted file would otherwise leave a reader of the README (or of a notebook's
"Code:" links) looking for something that is gone. Every repository path the README names in
backticks or links to, and every relative link in a notebook's source, must exist.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("minillm/", "kernels/", "tests/", "notebooks/", "benchmarks/", "docs/", ".ci/")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_paths():
    """Repository paths the README names: `path` in backticks and ](path) links."""
    tokens = set(re.findall(r"`([^`\s]+)`", README)) | set(re.findall(r"\]\(([^)\s#]+)\)", README))
    return sorted(t for t in tokens if t.startswith(TOP_LEVEL))


def test_readme_names_the_main_files():
    """The extraction works: it finds the files every reader is sent to."""
    paths = readme_paths()
    for expected in ("minillm/nn/attention.py", "kernels/cuda/fused_attention.cu", "notebooks/10_gradient_checks.ipynb",
                     "benchmarks/convergence.py", ".ci/run"):
        assert expected in paths


@pytest.mark.parametrize("path", readme_paths())
def test_readme_path_exists(path):
    assert list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists(), f"README names {path}, which does not exist"


NOTEBOOK_LINKS = sorted({(src.name, link) for src in (ROOT / "notebooks" / "src").glob("*.py")
                         for link in re.findall(r"\]\((\.\./[^)\s#]+)\)", src.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("source,link", NOTEBOOK_LINKS)
def test_notebook_link_exists(source, link):
    assert (ROOT / "notebooks" / link).resolve().exists(), f"{source} links to {link}, which does not exist"


def test_ci_runs_the_readme_test_command():
    """.ci/run installs the project the way the README says and runs the README's test command."""
    block = README.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    test_line = next(line for line in block.splitlines() if "pytest" in line).split("#")[0]
    commands = [c.strip() for c in test_line.split("&&")]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands == ['pip install -e ".[test]"', "python -m pytest -q"], commands
    for command in commands:
        assert command in ci, f".ci/run does not run the README's `{command}`"


def _parametrized_cases(test_file, function):
    """How many cases the list in ``function``'s @pytest.mark.parametrize holds (read from the source)."""
    import ast
    tree = ast.parse((ROOT / "tests" / test_file).read_text(encoding="utf-8"))
    func = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    call = next(d for d in func.decorator_list if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize")
    return len(call.args[1].elts), sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in tree.body)


def test_readme_counts_match_what_they_count():
    """The numbers the README quotes for the bad-input tests and `minillm gradcheck` are the real ones."""
    from minillm.gradcheck.suite import _cases, _cross_entropy_rows, model_cases
    api_cases, api_tests = _parametrized_cases("test_errors.py", "test_bad_input_raises_clear_error")
    cli_cases, _ = _parametrized_cases("test_cli.py", "test_bad_input_one_line_error_and_exit_code")
    checks = len(list(_cases())) + len(model_cases()) + len(_cross_entropy_rows())
    assert f"{api_cases + api_tests - 1} API cases (`tests/test_errors.py`)" in README
    assert f"{cli_cases} command-line cases (`tests/test_cli.py`" in README
    assert f"`minillm gradcheck` runs\n{checks} gradient checks" in README
