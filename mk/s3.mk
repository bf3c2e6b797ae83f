# S3 storage for development: an embedded SeaweedFS on 127.0.0.1 (see docs/s3.md).
SEAWEEDFS_DIR ?= .spamops/seaweedfs
S3_STORE ?= s3://spamops/models
SEAWEEDFS := $(BIN)/python scripts/seaweedfs.py
SEAWEEDFS_PORT ?=

.PHONY: storage-up storage-down storage-env demo-s3 test-s3

storage-up: $(STAMP) ## start SeaweedFS S3 on 127.0.0.1 (data in .spamops/seaweedfs) and print the env exports
	@$(SEAWEEDFS) up --dir $(SEAWEEDFS_DIR) $(if $(SEAWEEDFS_PORT),--port $(SEAWEEDFS_PORT))

storage-env: $(STAMP) ## print the env exports of the running SeaweedFS (for eval in your shell); exit 1 when none runs
	@$(SEAWEEDFS) env --dir $(SEAWEEDFS_DIR)

storage-down: $(STAMP) ## stop the SeaweedFS started by storage-up (its data stays in .spamops/seaweedfs)
	@$(SEAWEEDFS) down --dir $(SEAWEEDFS_DIR)

demo-s3: $(STAMP) ## train on the demo data into s3://spamops/models on the storage-up server, then list versions
	@$(SEAWEEDFS) status --dir $(SEAWEEDFS_DIR) >/dev/null || { echo "no SeaweedFS running: run 'make storage-up' first" >&2; exit 1; }
	@set -e; eval "$$($(SEAWEEDFS) env --dir $(SEAWEEDFS_DIR))"; \
	  $(BIN)/spamops train --store $(S3_STORE) $(if $(CONFIG),--config $(CONFIG)); \
	  echo; $(BIN)/spamops models list --store $(S3_STORE)

test-s3: $(STAMP) ## run only the S3 tests (they start their own SeaweedFS)
	$(BIN)/pytest -m s3 tests/s3 $(PYTEST_ARGS)
