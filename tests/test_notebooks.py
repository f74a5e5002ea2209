"""The notebooks run top to bottom on small settings (SCALING_NOTEBOOK_SMALL=1) in a kernel of this
interpreter, and are committed without outputs."""

import json
import os
import sys

import pytest

from conftest import PROJECT_ROOT, SHARED_DATA

NOTEBOOKS = PROJECT_ROOT / "notebooks"
NAMES = ("01_quickstart", "02_chinchilla", "03_moores_law")


def test_committed_notebooks_have_no_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.stem for p in paths] == list(NAMES)
    for path in paths:
        book = json.loads(path.read_text())
        for i, cell in enumerate(book["cells"]):
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                    f"{path.name} cell {i} has outputs; clear them before committing")
        assert "widgets" not in book.get("metadata", {}), path.name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra: pip install -e '.[test]'")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is in the test extra: pip install -e '.[test]'")
    if name == "02_chinchilla" and not (SHARED_DATA / "epoch-analyzing-chinchilla__svg_extracted_data.csv").exists():
        pytest.skip(f"Epoch's Chinchilla points are not in {SHARED_DATA} (the notebook itself falls back to a "
                    "synthetic stand-in)")
    monkeypatch.setenv("SCALING_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("SCALING_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("SCALING_SHARED_DATA", str(SHARED_DATA))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "agg")
    # The kernel is this interpreter's own ipykernel, so it imports the project from the same environment.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in book.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "every figure cell should display its figure"
