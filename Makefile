# The two commands a newcomer needs: `make demo` (the main job) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The worker extra (real Triton from nvidia-pytriton, tritonclient, torch, the reference ASR model)
# is installed too: the integration tests start real Triton workers.
EXTRAS ?= dev,lab,worker

.PHONY: demo test lint unit integration e2e cluster-binaries crd venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

venv: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

# The main job: a live local cluster autoscaled through a real trace (MINUTES=10 is one compressed day).
MINUTES ?= 10
demo: $(STAMP) system-deps cluster-binaries
	$(BIN)/voxscale demo --minutes $(MINUTES)

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench e2e
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration"

integration: $(STAMP) system-deps
	$(BIN)/pytest -q -m integration

# etcd, kube-apiserver, -controller-manager, -scheduler, kwok and helm, built from their Go
# modules once into ~/.cache/voxscale/bin/<version>/ (cold ~15 min on 2 cores, warm < 1 s).
cluster-binaries:
	bash e2e/cluster/build.sh

e2e: $(STAMP) cluster-binaries
	$(BIN)/pytest -q e2e

test: lint $(STAMP) system-deps cluster-binaries
	$(BIN)/pytest -q tests e2e

crd: $(STAMP)
	$(BIN)/voxscale crd > crds/speechcluster.yaml
	cp crds/speechcluster.yaml charts/voxscale/crds/speechcluster.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
