# Container images: build, push, pin, SBOM, sign (see docs/images.md).
# Included from the Makefile (-include mk/*.mk); uses its BIN and STAMP.
#   make images                          # spamops/trainer:<rev> and spamops/predictor:<rev>
#   make push REGISTRY=host:port/ns      # push both, print <registry>/<image>@sha256:...
#   make pin                             # write those digests into the chart values + kustomize base
# docker is $(DOCKER) talking to $DOCKER_HOST (your daemon; the tests start their own).
# Records of each step (built.json, pushed.json, sbom/): `pin` and `sign` use what `push` got back.
IMAGES_OUT ?= .spamops/images
# The checkout `make pin` rewrites (helm/spamops/values.yaml, manifests/base/).
PIN_ROOT ?= .
SHIP = $(BIN)/python scripts/images/ship.py --out $(IMAGES_OUT)
# Debian's client (it matches Debian's daemon) when installed, else the one on PATH.
DOCKER ?= $(if $(wildcard /usr/bin/docker),/usr/bin/docker,docker)
export DOCKER
# Empty: the Dockerfile's default (python:3.11-slim). `make images BASE_IMAGE=local`
# builds on the Debian base made here by scripts/images/base.sh instead.
BASE_IMAGE ?=
IMAGE_TAG ?=
REGISTRY ?=
# A CA bundle for pip inside the build (a build secret, never a layer); pip's own setting by default.
IMAGES_CA_BUNDLE ?= $(PIP_CERT)
COSIGN_KEY ?= cosign.key
COSIGN_PUB ?= cosign.pub
ACTIONLINT = $$(bash scripts/images/tools.sh --print-env actionlint | sed -n 's/^ACTIONLINT=//p')

.PHONY: images base-image push pin sbom sign verify images-tools images-prereqs images-system-packages \
  lint-workflows test-images retrain-job

# What the container tests need from the system, as command:Debian package (CI runs
# as root on a clean clone). Checked by command, so a Docker already installed another
# way (docker-ce, moby) is used as it is.
IMAGES_DEB_PACKAGES = dockerd:docker.io mmdebstrap:mmdebstrap docker-registry:docker-registry skopeo:skopeo
install: images-system-packages
# Built/cached before the suite, not inside a test's timeout (like envtest-build).
test: images-prereqs

lint: lint-workflows

images: $(STAMP) ## build the trainer and predictor images, tagged with the git revision (BASE_IMAGE=local: the Debian base made here)
	@set -euo pipefail; base="$(BASE_IMAGE)"; \
	if [ "$$base" = local ]; then base="$$(bash scripts/images/base.sh image)"; fi; \
	$(SHIP) build $(if $(IMAGE_TAG),--tag $(IMAGE_TAG)) $${base:+--base-image "$$base"} \
	  $(if $(IMAGES_CA_BUNDLE),--ca-bundle $(IMAGES_CA_BUNDLE))

base-image: ## bootstrap (once, cached) the Debian bookworm + python3 base image and import it into docker
	bash scripts/images/base.sh image

push: $(STAMP) ## push the images built by `make images` to REGISTRY=host:port/ns and print their digests
	@test -n "$(REGISTRY)" || { echo "push: set REGISTRY=host[:port]/namespace" >&2; exit 2; }
	$(SHIP) push --registry $(REGISTRY)

pin: $(STAMP) ## write the digests `make push` got into helm/spamops/values.yaml and manifests/base (deploy by digest)
	$(SHIP) pin --root $(PIN_ROOT)

sbom: $(STAMP) ## an SPDX JSON SBOM per built image (syft, built from its Go module and cached)
	$(SHIP) sbom

sign: $(STAMP) ## sign the pushed digests and attach the SBOMs as attestations (cosign, COSIGN_KEY=cosign.key)
	$(SHIP) sign --key $(COSIGN_KEY)

verify: $(STAMP) ## verify the signatures and SBOM attestations of the pushed digests (COSIGN_PUB=cosign.pub)
	$(SHIP) verify --key $(COSIGN_PUB)

images-system-packages: ## apt-get install docker.io mmdebstrap docker-registry skopeo when missing (as root)
	@set -euo pipefail; missing=""; \
	for pair in $(IMAGES_DEB_PACKAGES); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "warning: the container tests need:$$missing - install them as root (apt-get install -y$$missing)" >&2; \
	  exit 0; fi; \
	echo "apt-get install -y$$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }

images-prereqs: images-system-packages ## the cached base tarball and the Go tools (first run only)
	bash scripts/images/base.sh tarball
	bash scripts/images/tools.sh

images-tools: ## build/cache actionlint, syft and cosign (versions: scripts/images/versions.env)
	bash scripts/images/tools.sh

lint-workflows: ## actionlint on .github/workflows (actionlint built from its Go module, cached)
	@set -euo pipefail; bin="$(ACTIONLINT)"; [ -x "$$bin" ] || exit 1; \
	"$$bin" -shellcheck= -pyflakes= .github/workflows/*.yml && echo "actionlint: .github/workflows clean"
	$(BIN)/yamllint -c .yamllint.yaml --strict .github

retrain-job: ## start a training run from the CronJob (JOB=name), wait, exit with the trainer's exit code
	bash scripts/images/retrain-job.sh $(or $(JOB),retrain-$$(date +%s)) $(or $(NAMESPACE),spamops)

test-images: $(STAMP) images-prereqs ## run only the container tests (own dockerd, registry and SeaweedFS)
	$(BIN)/pytest -m images tests/images $(PYTEST_ARGS)
