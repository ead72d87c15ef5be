"""skinlib.reproduce: papermill runs, parameters, clean metadata, and failures that keep the last good notebook."""

import json

import nbformat
import pytest

from skinlib import reproduce


def write_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("smoke = False  # quick mode")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters] + [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_a_notebook_runs_with_parameters_and_clean_metadata(tmp_path):
    path = write_notebook(tmp_path / "01_ok.ipynb", "print('smoke is', smoke)")
    reproduce.run_notebook(path, parameters={"smoke": True})
    notebook = json.loads(path.read_text())
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    assert any("smoke is True" in "".join(o.get("text", "")) for o in outputs)
    assert set(notebook["metadata"]["papermill"]) <= {"parameters", "duration", "version"}
    assert str(tmp_path) not in path.read_text()  # No machine paths left by papermill.
    assert all("papermill" not in cell["metadata"] for cell in notebook["cells"])


def test_a_failing_notebook_names_the_cell_and_keeps_the_last_good_file(tmp_path):
    path = write_notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('broken on purpose')")
    before = path.read_text()
    with pytest.raises(reproduce.NotebookFailed, match=r"02_bad.ipynb failed in cell .*ValueError: broken on purpose"):
        reproduce.run_notebook(path)
    assert path.read_text() == before


def test_notebooks_run_in_reading_order(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for name in ["02_b.ipynb", "01_a.ipynb", "notes.ipynb"]:
        write_notebook(tmp_path / "notebooks" / name, "pass")
    write_notebook(tmp_path / "Project_Main_Notebook.ipynb", "pass")
    names = [p.name for p in reproduce.notebooks_in_order(tmp_path)]
    assert names == ["01_a.ipynb", "02_b.ipynb", "Project_Main_Notebook.ipynb"]
