# spamops — every entry point a user or CI needs.  `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?=
STORE ?= ./.spamops/store
DATA ?=
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

VERSION ?=
PERCENT ?= 10
GITOPS ?=
GITOPS_DIR ?= .
GITOPS_PUSH ?=
# GITOPS=1: rollout steps are commits to GITOPS_DIR (GITOPS_PUSH=1 pushes each); CONFIG=run.yaml names the target.
ROLLOUT_ARGS = --store $(STORE) $(if $(CONFIG),--config $(CONFIG)) $(if $(GITOPS),--gitops $(GITOPS_DIR) $(if $(GITOPS_PUSH),--push))

.PHONY: help install demo train test test-fast lint models deploy-canary canary-auto canary-promote canary-abort canary-status bench-judge

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml dev/pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]' -e ./dev
	touch $@

install: $(STAMP) ## create .venv with the pinned dependencies, spamops and its test support (dev/) editable

demo: $(STAMP) ## train on the bundled demo data, gate, version and promote into ./.spamops/store
	$(BIN)/spamops train --store $(STORE) $(if $(CONFIG),--config $(CONFIG))
	@echo; $(BIN)/spamops models list --store $(STORE)

train: $(STAMP) ## train on DATA="a.csv b.csv" (or CONFIG=file.yaml)
	$(BIN)/spamops train --store $(STORE) $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA))

models: $(STAMP) ## list stored versions
	$(BIN)/spamops models list --store $(STORE)

test: $(STAMP) ## run the test suite (starts its own S3 server and control plane)
	$(BIN)/pytest $(PYTEST_ARGS)

# The edit-test loop: every test that needs no control plane (k8s, cluster), no docker (images) and
# no Go build (helm), on every core (a test file stays on one worker, so its fixtures start once).
# It still starts real predictors, SeaweedFS, Prometheus and Alertmanager.
FAST_TESTS := not k8s and not cluster and not images and not helm
test-fast: $(STAMP) ## the tests that need no control plane, docker or Go build, on every core (the edit-test loop)
	$(BIN)/pytest -m "$(FAST_TESTS)" -n auto --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP) ## ruff on Python, the import layers (lint-imports), types (mypy on src), plus the Kubernetes/Docker linters
	$(BIN)/ruff check src dev tests scripts serving setup.py
	$(BIN)/ruff format --check src dev tests scripts serving setup.py
	$(BIN)/lint-imports
	$(BIN)/mypy

deploy-canary: $(STAMP) ## canary PERCENT% (default 10) of the InferenceService's traffic to VERSION (default: production)
	$(BIN)/spamops rollout start $(VERSION) --percent $(PERCENT) $(ROLLOUT_ARGS)

canary-auto: $(STAMP) ## analyse the canary step by step against Prometheus; promote or abort it
	$(BIN)/spamops rollout auto $(VERSION) $(ROLLOUT_ARGS)

canary-promote: $(STAMP) ## give the canary all traffic
	$(BIN)/spamops rollout promote $(ROLLOUT_ARGS)

canary-abort: $(STAMP) ## all traffic back to stable (and the registry pointer, if the canary was production)
	$(BIN)/spamops rollout abort $(ROLLOUT_ARGS) $(if $(REASON),--reason "$(REASON)")

bench-judge: $(STAMP) ## simulate 10,000 rollouts per scenario through the canary judge (DATA=csv, BENCH_ARGS=--json)
	$(BIN)/python scripts/bench_judge.py $(if $(DATA),--data $(DATA)) $(BENCH_ARGS)

canary-status: $(STAMP) ## stable and canary versions, weights, step and last verdict
	$(BIN)/spamops rollout status --store $(STORE) $(if $(CONFIG),--config $(CONFIG))

-include mk/*.mk
