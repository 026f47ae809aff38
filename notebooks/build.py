"""Build the teaching notebooks from their sources, and run them so they keep their outputs.

    python notebooks/build.py            # every notebooks/src/NN_name.py -> notebooks/NN_name.ipynb, executed
    python notebooks/build.py 03 05      # only the notebooks whose names start with these
    python notebooks/build.py --no-run   # write the notebooks without executing them

The sources are plain Python files in the "percent" layout many editors understand: a line
``# %%`` starts a code cell and ``# %% [markdown]`` a text cell whose lines start with ``# ``.
They are what is reviewed and diffed; the .ipynb files are built from them (and checked to match
by tests/test_notebooks.py) so that the committed notebooks read well on GitHub with their figures.
"""
import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cells_from_source(text):
    """[(kind, source)] with kind "code" or "markdown", from a percent-format file."""
    cells, kind, lines = [], None, []

    def flush():
        if kind is not None:
            body = "\n".join(lines).strip("\n")
            if kind == "markdown":
                body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n"))
            cells.append((kind, body))

    for line in text.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def make_notebook(src):
    """An unexecuted notebook from one source file."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == "markdown" else nbformat.v4.new_code_cell(s)
                for k, s in cells_from_source(Path(src).read_text(encoding="utf-8"))]
    return nb


def execute(nb, timeout=600):
    """Run every cell in a fresh kernel whose working directory is notebooks/ (relative links work)."""
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()


def build(src, run=True, timeout=600):
    """Write (and by default execute) the notebook for one source file; returns (path, seconds)."""
    import nbformat
    nb = make_notebook(src)
    path = HERE / (src.stem + ".ipynb")
    seconds = 0.0
    if run:
        t0 = time.perf_counter()
        try:
            execute(nb, timeout)
        finally:                                   # a failed run is still written, to show where it failed
            nbformat.write(nb, str(path))
        seconds = time.perf_counter() - t0
    nbformat.write(nb, str(path))
    return path, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("only", nargs="*", help="name prefixes, e.g. 01 05")
    ap.add_argument("--no-run", action="store_true")
    args = ap.parse_args()
    for src in sorted((HERE / "src").glob("*.py")):
        if args.only and not any(src.stem.startswith(p) for p in args.only):
            continue
        path, seconds = build(src, run=not args.no_run)
        print(f"{path.name}: {'ran in %.0f s' % seconds if not args.no_run else 'written, not run'}", file=sys.stderr)


if __name__ == "__main__":
    main()
