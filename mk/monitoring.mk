# Monitoring: Prometheus rules, Alertmanager config, the drift monitor and the retrain trigger
# (see docs/monitoring.md).  Included from the Makefile (-include mk/*.mk).
.PHONY: debian-deps test-monitoring

# `make install` also installs the Debian packages the tests start (promtool, amtool, ...).
install: debian-deps

debian-deps: ## apt-get install the Debian packages the tests run for real, when missing (Prometheus, Alertmanager)
	@bash scripts/install-debian-deps.sh

test-monitoring: $(STAMP) ## run only the monitoring tests (real Prometheus, Alertmanager and predictors)
	$(BIN)/pytest -m monitoring tests/monitoring $(PYTEST_ARGS)

lint: lint-monitoring
.PHONY: lint-monitoring
lint-monitoring: $(STAMP) ## yamllint the example Alertmanager config and the rule unit tests
	$(BIN)/yamllint -c .yamllint.yaml --strict monitoring
