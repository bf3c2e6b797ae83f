# Kubernetes packaging: test control plane (envtest), chart/manifests, linters.
# See docs/kubernetes.md. Included from the Makefile (-include mk/*.mk), which
# sets VENV, BIN and STAMP.
ENVTEST_DIR ?= $(or $(SPAMOPS_CACHE),$(HOME)/.cache/spamops)/envtest/run
K8S_DOCKERFILES ?= Dockerfile
# Only helm is built (or reused) for it, not the whole control plane.
K8S_HELM = $$(bash scripts/envtest/build.sh --print-env helm | sed -n 's/^HELM=//p')

CLUSTER_DIR ?= $(or $(SPAMOPS_CACHE),$(HOME)/.cache/spamops)/envtest/cluster
CONTROLPLANE := $(BIN)/python scripts/envtest/controlplane.py

.PHONY: envtest envtest-stop envtest-build cluster-up cluster-down manifests chart-docs chart-schema lint-k8s test-k8s test-cluster

# `make lint` and `make test` pick these up: linters for what cannot run here,
# and the control plane built/cached before the suite (not inside a test's timeout).
lint: lint-k8s
test: envtest-build

envtest-build: ## build/cache the test cluster: Kubernetes, etcd, helm, kwok, KServe manager, CRDs (versions: scripts/envtest/versions.env)
	bash scripts/envtest/build.sh

envtest: $(STAMP) envtest-build ## start etcd + kube-apiserver on loopback (CRDs installed) and print the kubeconfig path
	@$(CONTROLPLANE) start --dir $(ENVTEST_DIR)

envtest-stop: $(STAMP) ## stop the control plane started by `make envtest`
	@$(CONTROLPLANE) stop --dir $(ENVTEST_DIR)

cluster-up: $(STAMP) envtest-build ## start the test cluster (API server, controllers, scheduler, KWOK nodes, KServe) and print the kubeconfig path
	@$(CONTROLPLANE) start --cluster --dir $(CLUSTER_DIR)

cluster-down: $(STAMP) ## stop the cluster started by `make cluster-up` (its logs stay in CLUSTER_DIR)
	@$(CONTROLPLANE) stop --dir $(CLUSTER_DIR)

manifests: ## re-render manifests/base from the Helm chart (the single source of truth)
	bash scripts/k8s/render-base.sh

chart-schema: $(STAMP) ## regenerate values.schema.json's training.config from the trainer's RunConfig (JSON Schema)
	$(BIN)/python scripts/k8s/chart_training_schema.py --write

chart-docs: ## regenerate helm/spamops/README.md (helm-docs) and the schema descriptions from values.yaml's `# --` comments
	bash scripts/k8s/chart-docs.sh

test-k8s: $(STAMP) envtest-build ## run only the Kubernetes packaging tests (own control plane and cluster)
	$(BIN)/pytest -m k8s tests/k8s $(PYTEST_ARGS)

test-cluster: $(STAMP) envtest-build ## run only the tests on the test cluster with KServe and the controllers
	$(BIN)/pytest -m cluster tests/k8s $(PYTEST_ARGS)

# The one place `helm lint --strict` runs (tests/k8s renders each value set too).
lint-k8s: $(STAMP) ## helm lint --strict, yamllint (manifests, chart, rendered chart), hadolint (Dockerfiles)
	@set -euo pipefail; helm="$(K8S_HELM)"; [ -x "$$helm" ] || exit 1; \
	for values in "" helm/spamops/ci/*-values.yaml; do \
	  echo "helm lint --strict helm/spamops $${values:+-f $$values}"; \
	  "$$helm" lint --strict --quiet helm/spamops $${values:+-f "$$values"}; \
	  "$$helm" template spamops helm/spamops --namespace spamops $${values:+-f "$$values"} \
	    | $(BIN)/yamllint -c .yamllint.yaml --strict -; \
	done
	$(BIN)/yamllint -c .yamllint.yaml --strict manifests helm .yamllint.yaml
	@for f in $(K8S_DOCKERFILES); do \
	  [ -f "$$f" ] || { echo "lint-k8s: $$f is missing" >&2; exit 1; }; done
	$(BIN)/hadolint $(K8S_DOCKERFILES)
