# The two commands a newcomer needs: `make demo` (the main job) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The worker extra (real Triton from nvidia-pytriton, tritonclient, torch, the reference ASR model)
# is installed too: the integration tests start real Triton workers.
EXTRAS ?= dev,worker

.PHONY: demo test lint unit integration crd venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/voxscale demo examples/speechcluster.yaml

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration"

integration: $(STAMP) system-deps
	$(BIN)/pytest -q -m integration

test: lint $(STAMP) system-deps
	$(BIN)/pytest -q

crd: $(STAMP)
	$(BIN)/voxscale crd > crds/speechcluster.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
