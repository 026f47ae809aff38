"""The teaching notebooks run top to bottom, and the committed .ipynb files match their sources.

Each notebook is executed with nbclient in a fresh kernel. MINILLM_NOTEBOOK_QUICK=1 shortens the
notebooks' training budgets to a few seconds so the suite stays short; the committed notebooks
hold the outputs of the full run (python notebooks/build.py). Set MINILLM_NOTEBOOK_FULL=1 to
execute the full versions here and check the 90-second budget of each.
"""
import importlib.util
import os
import time
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted((NB_DIR / "src").glob("*.py"))

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _builder():
    spec = importlib.util.spec_from_file_location("nb_build", NB_DIR / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_there_are_eleven_notebooks():
    assert [s.stem[:2] for s in SOURCES] == ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11"]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_matches_source_and_has_outputs(src):
    nb = nbformat.read(str(NB_DIR / (src.stem + ".ipynb")), as_version=4)
    want = _builder().cells_from_source(src.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in nb.cells] == want, "run: python notebooks/build.py " + src.stem[:2]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "some cells were never run"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), "no figure in the outputs"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(src, monkeypatch):
    full = os.environ.get("MINILLM_NOTEBOOK_FULL") == "1"
    if not full:
        monkeypatch.setenv("MINILLM_NOTEBOOK_QUICK", "1")
    build = _builder()
    nb = build.make_notebook(src)
    t0 = time.perf_counter()
    build.execute(nb, timeout=300)
    if full:
        assert time.perf_counter() - t0 <= 90, f"{src.stem} took {time.perf_counter() - t0:.0f} s (budget 90 s)"
