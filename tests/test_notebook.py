"""notebooks/analyzer.ipynb runs top to bottom (nbclient) on a small fixture database, so it cannot rot."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analyzer.ipynb"


def _fixture_module():
    path = Path(__file__).resolve().parent / "commons" / "analyzer_fixture.py"
    spec = importlib.util.spec_from_file_location("analyzer_fixture_for_notebook", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
@pytest.mark.parametrize("source", ["database", "bundle"])
def test_analyzer_notebook_executes(recorder, database, database_url, source, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    fixture = _fixture_module()
    fixture.fill_analyzer_trail(recorder)
    monkeypatch.delenv("A4NN_BUNDLE", raising=False)
    monkeypatch.setenv("A4NN_DB_URL", database_url)
    if source == "bundle":
        from a4nn.commons.bundle import export_bundle

        export_bundle(database, fixture.ENGINE_SEARCH, tmp_path / "bundle", record=False)
        monkeypatch.setenv("A4NN_BUNDLE", str(tmp_path / "bundle"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 7, "the figures were not displayed"
    text = "".join(o.get("text", "") for o in outputs)
    assert ("3 searches" if source == "database" else "1 searches") in text


@pytest.mark.slow
def test_notebook_without_a_database_says_how_to_get_one(tmp_path: Path, monkeypatch) -> None:
    """No A4NN_DB_URL / A4NN_BUNDLE and no a4nn.db: one line saying how to get one, no traceback, no file made."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("A4NN_DB_URL", raising=False)
    monkeypatch.delenv("A4NN_BUNDLE", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        client.execute()  # Run All stops at the first cell, as it should
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert len(errors) == 1
    shown = "\n".join(errors[0].traceback)
    assert shown.startswith("error: no lineage database at") and "a4nn-commons search --preset quick" in shown
    assert "Traceback" not in shown and "File " not in shown and len(errors[0].traceback) == 1
    assert not list(tmp_path.glob("a4nn.db*"))
