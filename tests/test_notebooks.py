"""Every notebook runs from top to bottom (small sizes via CREAMVIZ_QUICK=1), each executed once.

The browser suite (tests/test_browser.py) runs the notebooks in JupyterLab and saves them, with
their outputs, to test-artifacts/executed/; the docs build (scripts/build_docs.py, run by
tests/test_docs_site.py) executes the rest with nbclient into build/docs/executed/. This test checks
those executed notebooks -- executing, with nbclient, only a notebook that has no executed copy
newer than its source (e.g. when this file runs alone).
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# transformers' loading / saving bars and length warnings stay out of the notebook
NOISE = ("Loading weights", "Writing model shards", "predefined maximum length")


def _build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed():
    return _build_docs().executed_notebooks(ROOT / "test-artifacts" / "executed")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_ran_cleanly(path, executed):
    nb = nbformat.read(executed[path.name], as_version=4)
    source = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the executed copy is this notebook, run to the end
    assert [c.source for c in code] == [c.source for c in source.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "a cell did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    streams = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    for noise in NOISE:
        assert noise not in streams, noise
    # every notebook shows at least one plotly figure or widget
    kinds = {k for c in code for o in c.outputs for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in kinds or "application/vnd.jupyter.widget-view+json" in kinds
