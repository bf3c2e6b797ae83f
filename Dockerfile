# The two spamops images, one file: every stage but the last is shared.
#   docker build --target trainer   -t spamops/trainer   .   # the training Job (spamops train)
#   docker build --target predictor -t spamops/predictor .   # KServe's kserve-container
# `make images` builds both, tagged with the git revision (docs/images.md); the trainer
# target needs build/helm/helm in the context (`make images` puts the pinned helm there).
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module. The
# default is the official python:3.11-slim; the tests build on a Debian bookworm
# base made locally by scripts/images/base.sh (no public registry there).
# Optional build secret "ca-bundle": a CA bundle for pip (e.g. a TLS-inspecting
# proxy); it is mounted for the install step only and never lands in a layer.
# Pass a credentialed package index the same way (a secret), never as ARG/ENV.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: /opt/venv with the locked runtime dependencies and spamops itself
# (then without pip and without the libraries' own test suites: 110 MB nobody runs)
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Dependencies first, in their own layer: a code change reinstalls only spamops.
# requirements.lock is used as constraints, so only the runtime dependencies
# (pyproject's [project].dependencies, plus the dask extra so the trainer image also runs
# Dask workers for train.backend: dask) are installed, at the locked versions.
COPY requirements.lock pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && python3 -m venv /opt/venv \
    && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["dask"]))' >runtime.txt \
    && /opt/venv/bin/pip install -c requirements.lock -r runtime.txt
COPY README.md setup.py MANIFEST.in ./
COPY src ./src
# setup.py copies the chart into the package (spamops/deploy/chart): `spamops render` needs no checkout.
COPY helm/spamops ./helm/spamops
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel \
    && find /opt/venv/lib -depth -type d -path '*/site-packages/*/tests' -exec rm -rf {} +

# ---- runtime: the venv on a clean base, an unprivileged user, no build tools
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
RUN groupadd --system --gid 10001 spamops \
    && useradd --system --uid 10001 --gid spamops --no-create-home --home-dir /tmp --shell /usr/sbin/nologin spamops
COPY --from=build /opt/venv /opt/venv
# Labels last (they change with every revision; the layers above stay cached).
ARG BASE_IMAGE
ARG REVISION=unknown
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/spamops/spamops
LABEL org.opencontainers.image.source=$SOURCE \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.vendor=spamops \
      org.opencontainers.image.base.name=$BASE_IMAGE
USER 10001:10001
WORKDIR /tmp

# ---- trainer: `spamops train` as the Job and CronJob run it (their command repeats this)
FROM runtime AS trainer
# helm renders the packaged chart (`spamops render isvc`, GitOps write-back). No Debian package and no
# download: `make images` puts the pinned helm, built from its Go module by
# `scripts/envtest/build.sh helm`, at build/helm/helm in the build context.
COPY build/helm/helm /usr/local/bin/helm
# matplotlib writes its cache under HOME; with a read-only root, /tmp is the pod's emptyDir.
ENV MPLCONFIGDIR=/tmp/matplotlib MPLBACKEND=Agg
LABEL org.opencontainers.image.title=spamops-trainer \
      org.opencontainers.image.description="Retrain, gate, version and promote the spam model (a Kubernetes Job)"
# A batch job: it exits with its result (0, 1, 2, 3); there is nothing to probe.
HEALTHCHECK NONE
ENTRYPOINT ["spamops"]
CMD ["train", "--config", "/etc/spamops/config.yaml"]

# ---- predictor: the KServe predictor (container kserve-container, model in /mnt/models)
FROM runtime AS predictor
COPY serving/healthcheck.py /opt/spamops/healthcheck.py
LABEL org.opencontainers.image.title=spamops-predictor \
      org.opencontainers.image.description="KServe predictor of the spam model (V1, V2 REST and gRPC, explain)"
# 8080: HTTP (V1, V2, metrics); 8081: gRPC (V2), on by default as in any KServe predictor
EXPOSE 8080 8081
# For `docker run`: Kubernetes ignores HEALTHCHECK and uses the InferenceService's readinessProbe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["python", "/opt/spamops/healthcheck.py"]
ENTRYPOINT ["python", "-m", "spamops.serving"]
CMD ["--model_name", "spam", "--model_dir", "/mnt/models", "--http_port", "8080"]
