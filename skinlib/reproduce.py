"""Run the study's notebooks in reading order with papermill.

``python -m skinlib reproduce`` executes ``notebooks/NN_*.ipynb`` in order and
then ``Project_Main_Notebook.ipynb``, writing each executed notebook over
itself so that the committed outputs are those of the run. With ``--smoke``
the same chain runs on a small subset and writes to ``.papermill/smoke/``
instead, leaving the committed notebooks untouched. The run stops at the
first failure and names the notebook and the cell.
"""

from __future__ import annotations

import time
from pathlib import Path

from skinlib.data import repo_root


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


def notebooks_in_order(root=None):
    """Return the numbered chapters in ``notebooks/`` and then the main notebook, if present."""
    root = Path(root or repo_root())
    chapters = sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    main = root / "Project_Main_Notebook.ipynb"
    return chapters + ([main] if main.is_file() else [])


def run_notebook(path, *, output=None, parameters=None, log_output=False):
    """Execute one notebook with papermill in its own folder and return the output path.

    Papermill writes cell by cell into a scratch copy under ``.papermill/running/``;
    only a notebook that ran to the end replaces ``output``, so a failure
    leaves the last good notebook in place.

    Raises
    ------
    NotebookFailed
        When a cell raises; the message names the notebook, the cell number,
        the error and where the partly executed copy is.
    """
    import os

    import papermill

    path = Path(path)
    output = Path(output or path)
    scratch = repo_root() / ".papermill" / "running" / output.name
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(path), str(scratch), parameters=parameters or {}, cwd=str(path.parent),
            progress_bar=False, log_output=log_output, kernel_name="python3",
        )
    except papermill.PapermillExecutionError as error:
        raise NotebookFailed(
            f"{path.name} failed in cell {error.exec_count} (index {error.cell_index}): "
            f"{error.ename}: {error.evalue}. The partly executed copy is {scratch}; {output.name} is unchanged."
        ) from None
    clean_notebook(scratch)
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(scratch, output)
    return output


def clean_notebook(path):
    """Drop what papermill records that is noise in a committed notebook: paths, timestamps, per-cell timings.

    The notebook keeps its parameters and the total run time.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    record = notebook.metadata.get("papermill", {})
    notebook.metadata["papermill"] = {key: record[key] for key in ("parameters", "duration", "version") if key in record}
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


def reproduce(*, smoke=False, root=None, only=None, echo=print):
    """Run every notebook in order; return ``[(notebook, seconds), ...]``.

    Parameters
    ----------
    smoke : bool, default=False
        Run on a small subset (each notebook's ``smoke`` parameter) and write
        the executed notebooks to ``.papermill/smoke/`` instead of in place.
    root : str or Path, default=None
        The repository; default the one holding this package.
    only : sequence of str, default=None
        Run only the notebooks whose file name contains one of these strings.
    echo : callable, default=print
        Where progress lines go.
    """
    root = Path(root or repo_root())
    notebooks = [p for p in notebooks_in_order(root) if not only or any(key in p.name for key in only)]
    if not notebooks:
        raise FileNotFoundError(f"No notebooks to run under {root / 'notebooks'}.")
    timings, started = [], time.perf_counter()
    for number, notebook in enumerate(notebooks, 1):
        output = root / ".papermill" / "smoke" / notebook.name if smoke else notebook
        echo(f"[{number}/{len(notebooks)}] {notebook.relative_to(root)} ...", flush=True)
        begin = time.perf_counter()
        run_notebook(notebook, output=output, parameters={"smoke": True} if smoke else {})
        timings.append((notebook.name, time.perf_counter() - begin))
        echo(f"[{number}/{len(notebooks)}] {notebook.name} done in {timings[-1][1]:.0f} s", flush=True)
    echo(f"All {len(notebooks)} notebook(s) ran in {time.perf_counter() - started:.0f} s.", flush=True)
    return timings
