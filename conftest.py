"""pytest's settings for the whole repository (the tests' own fixtures are in tests/conftest.py).

Here, at the root, so that pytest reads it whatever paths it is given: ``pytest -n 2 notebooks/`` needs it as much
as ``make test`` does.
"""

import pytest


@pytest.hookimpl(optionalhook=True)  # A hook of pytest-xdist; without it installed, pytest never calls this.
def pytest_xdist_make_scheduler(config, log):
    """With xdist's default ``--dist load``: the notebooks' cells on one worker, in reading order; other tests spread.

    nbval runs a notebook's cells in one kernel, one after the other, and a chapter's smoke run reads the smoke
    models of the chapters before it (under ``.papermill/smoke/``), so every notebook cell belongs to one unit of
    work; any other test is a unit of its own. xdist's ``--loadscope-reorder`` (its default) hands out the largest
    unit, the notebooks, first. Another ``--dist`` given on the command line is left to xdist. (Its ``loadgroup``
    mode would group the notebooks through markers, but under pytest 9.2 it cannot rename a test, so its groups are
    ignored.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return "notebooks" if nodeid.split("::", 1)[0].endswith(".ipynb") else nodeid

    return NotebooksTogether(config, log)
