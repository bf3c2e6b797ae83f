# The KServe predictor run locally, and its benchmark (see docs/serving.md).
# Included from the Makefile (-include mk/*.mk); uses its BIN, STAMP, STORE and DATA.
SERVE_MODEL ?= spam
SERVE_PORT ?= 8080
SERVE_BIND ?= 127.0.0.1
SERVE_ARGS ?=
VERSION ?=
STORAGE_URI ?=
BENCH_ARGS ?=
# The KServe SDK the serving suite is also proved on (the pinned one is in requirements.lock).
KSERVE_COMPAT ?= 0.20.0

.PHONY: serve bench-serve bench-shadow test-serving-compat

# The pull goes to a scratch directory the predictor removes at exit; it binds what it prints.
serve: $(STAMP) ## serve production from STORE on 127.0.0.1:8080 (VERSION=v for another version, STORAGE_URI=file://|s3://... to pull one)
	@set -euo pipefail; \
	uri="$(if $(STORAGE_URI),$(STORAGE_URI),$(STORE)/$(SERVE_MODEL)$(if $(VERSION),/$(VERSION)))"; \
	echo "serving $$uri on http://$(SERVE_BIND):$(SERVE_PORT)"; \
	exec $(BIN)/python -m spamops.serving --model_name $(SERVE_MODEL) --storage-uri "$$uri" \
	  --bind $(SERVE_BIND) --http_port $(SERVE_PORT) --enable_grpc false $(SERVE_ARGS)

bench-serve: $(STAMP) ## benchmark the predictor against MLServer and the framework ceiling (needs wrk; BENCH_ARGS=..., DATA=csv)
	@command -v wrk >/dev/null || { echo "bench-serve needs wrk: apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python scripts/bench_serve.py $(if $(DATA),--data $(DATA)) $(BENCH_ARGS)

bench-shadow: $(STAMP) ## benchmark the predictor with its shadow model off, on and slow (needs wrk; BENCH_ARGS=..., DATA=csv)
	@command -v wrk >/dev/null || { echo "bench-shadow needs wrk: apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python scripts/bench_shadow.py $(if $(DATA),--data $(DATA)) $(BENCH_ARGS)

test-serving-compat: ## run tests/serving on KServe SDK $(KSERVE_COMPAT) too, in its own venv (cached in ~/.cache/spamops)
	PYTHON=$(PYTHON) bash scripts/serving_compat.sh $(KSERVE_COMPAT) $(PYTEST_ARGS)
