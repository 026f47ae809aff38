"""The README, the pages in docs/ and the notebooks say only true things about the repository.

- Every repository path they name (in backticks or as a relative link) exists, top-level files
  included, and every relative link in a notebook's source exists.
- They describe the present: no line speaks of issues, sessions, numbered runs or commit hashes
  (history belongs in git log and benchmarks/results/).
- The README stays within 250 lines, and the counts the pages quote equal what they count.
- .ci/run runs the README's install and test commands and builds the documentation strictly.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("minillm/", "kernels/", "tests/", "notebooks/", "benchmarks/", "docs/", ".ci/")
TOP_FILES = ("README.md", "setup.py", "mkdocs.yml")
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {"README.md": README} | {f"docs/{p.name}": p.read_text(encoding="utf-8")
                                 for p in sorted((ROOT / "docs").glob("*.md"))}
HISTORY = re.compile(r"\bissues?\b|\bsessions?\b|\brun \d+\b|\bruns \d+ (?:to|and) \d+\b|\bcommit\b|"
                     r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", re.IGNORECASE)


def named_paths(page, text):
    """Repository paths a page names: words of code blocks and of `inline code` (so
    `python benchmarks/cpu.py` names benchmarks/cpu.py), and ](target) links, which in docs/
    are relative to docs/."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = blocks + re.findall(r"`([^`\n]+)`", prose)
    words = {word.strip("\"'(),:;") for span in spans for word in span.split()}
    links = set(re.findall(r"\]\(([^)\s#]+)\)", prose))
    if page.startswith("docs/"):
        links = {t if t.startswith(("http:", "https:", "../")) else "docs/" + t for t in links}
    found = {t for t in words | links if t.startswith(TOP_LEVEL) or t in TOP_FILES}
    return sorted(found)


PATHS = sorted({(page, path) for page, text in PAGES.items() for path in named_paths(page, text)})


def test_the_extraction_finds_the_main_files():
    paths = {path for _, path in PATHS}
    for expected in ("minillm/nn/attention.py", "kernels/cuda/fused_attention.cu", "kernels/dispatch.py",
                     "docs/benchmarks.md", "benchmarks/cpu.py", "setup.py"):
        assert expected in paths, expected


@pytest.mark.parametrize("page,path", PATHS)
def test_named_path_exists(page, path):
    assert list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists(), f"{page} names {path}, which does not exist"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_describe_the_present(page):
    bad = [(n, line) for n, line in enumerate(PAGES[page].splitlines(), 1) if HISTORY.search(line)]
    assert not bad, f"{page} speaks of the project's history: " + "; ".join(f"line {n}: {line[:80]}" for n, line in bad)


def test_source_files_speak_of_no_issue_or_session():
    """Docstrings and comments explain the code, not the work that made it."""
    words = re.compile(r"\bissues?\b|\bsessions?\b", re.IGNORECASE)
    files = [p for folder in ("minillm", "kernels", "benchmarks", "tests", "notebooks")
             for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".py", ".cu") and p.name != "test_readme.py"]
    bad = [f"{p.relative_to(ROOT)}:{n}" for p in files
           for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if words.search(line)]
    assert files and not bad, bad


def test_history_words_are_caught():
    for line in ("as a later session found", "see issue 7", "run 4 gave 1.011", "after commit 84c6fb2"):
        assert HISTORY.search(line), line
    for line in ("runs/gpt-20261201", "sha256 of the corpus", "2,000 steps in 140 s"):
        assert not HISTORY.search(line), line


def test_readme_is_at_most_250_lines():
    assert len(README.splitlines()) <= 250


NOTEBOOK_LINKS = sorted({(src.name, link) for src in (ROOT / "notebooks" / "src").glob("*.py")
                         for link in re.findall(r"\]\((\.\./[^)\s#]+)\)", src.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("source,link", NOTEBOOK_LINKS)
def test_notebook_link_exists(source, link):
    assert (ROOT / "notebooks" / link).resolve().exists(), f"{source} links to {link}, which does not exist"


def test_ci_runs_the_readme_commands_and_builds_the_docs():
    """.ci/run installs the project the way the README says, runs its test command, builds the site."""
    block = README.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    test_line = next(line for line in block.splitlines() if "pytest" in line).split("#")[0]
    commands = [c.strip() for c in test_line.split("&&")]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands == ['pip install -e ".[test]"', "python -m pytest -q"], commands
    for command in commands:
        assert command in ci, f".ci/run does not run `{command}`"
    assert any(line.endswith("mkdocs build --strict") for line in ci), ".ci/run does not build the documentation"


def _parametrized_cases(test_file, function):
    """How many cases the list in ``function``'s @pytest.mark.parametrize holds (read from the source)."""
    import ast
    tree = ast.parse((ROOT / "tests" / test_file).read_text(encoding="utf-8"))
    func = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    call = next(d for d in func.decorator_list if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize")
    return len(call.args[1].elts), sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in tree.body)


def test_quoted_counts_match_what_they_count():
    """The numbers quoted for the bad-input tests and `minillm gradcheck` are the real ones."""
    from minillm.gradcheck.suite import _cases, _cross_entropy_rows, model_cases
    api_cases, api_tests = _parametrized_cases("test_errors.py", "test_bad_input_raises_clear_error")
    cli_cases, _ = _parametrized_cases("test_cli.py", "test_bad_input_one_line_error_and_exit_code")
    checks = len(list(_cases())) + len(model_cases()) + len(_cross_entropy_rows())
    testing = PAGES["docs/testing.md"]
    assert f"{api_cases + api_tests - 1} API cases (`tests/test_errors.py`" in testing
    assert f"{cli_cases} command-line cases (`tests/test_cli.py`" in testing
    assert f"{checks} rows" in testing
    assert f"`minillm gradcheck` runs {checks}\ngradient checks" in README


def test_quoted_exercise_counts_match():
    """The number of exercises in the README and of planted mistakes in docs/testing.md are the real ones."""
    from minillm.exercises import EXERCISES
    planted = ast_list_length("test_exercises.py", "PLANTED")
    assert f"hands out {len(EXERCISES)} graded exercises" in README
    assert f"{planted} mistakes planted" in PAGES["docs/testing.md"]
    assert f"{len(EXERCISES)} exercises" in PAGES["docs/teachers.md"]


def ast_list_length(test_file, name):
    """The number of elements of the module-level list ``name`` in tests/<test_file>."""
    import ast
    tree = ast.parse((ROOT / "tests" / test_file).read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == name)
    return len(node.value.elts)
