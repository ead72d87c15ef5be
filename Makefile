# Two commands do everything on a fresh machine (Python 3.11 and make needed):
#   make reproduce   create .venv, install the pinned environment, get the data if missing,
#                    and run every notebook in order with papermill (SMOKE=1: small and fast;
#                    ARGS="--set seed=1": a parameter for every notebook that has it)
#   make test        create .venv if needed and run the unit tests, doctests and every
#                    notebook in smoke mode through nbval
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SMOKE ?=
ARGS ?=

.PHONY: setup data reproduce test benchmark clean-cache

setup: $(VENV)/.installed

$(VENV)/.installed: Environment/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -r Environment/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps -e .
	touch $@

data: setup
	$(BIN)/python -m skinlib download --if-missing

reproduce: data
	$(BIN)/python -m skinlib reproduce $(if $(SMOKE),--smoke) $(ARGS)

# The tests also need test-only packages (Environment/requirements-test.txt): the PyTorch reference of the
# EfficientNet-Lite0 port and selenium for the lesion checker's browser test.
$(VENV)/.test-installed: $(VENV)/.installed Environment/requirements-test.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -r Environment/requirements-test.txt
	touch $@

# Two workers (pytest-xdist); conftest.py (at the root) keeps the notebooks' cells together, in order, on one of them.
test: data $(VENV)/.test-installed
	SKINLIB_SMOKE=1 $(BIN)/python -m pytest -n 2

benchmark: data
	$(BIN)/python benchmarks/input_pipeline.py

clean-cache:
	rm -rf $${SKINLIB_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/skinlib}
