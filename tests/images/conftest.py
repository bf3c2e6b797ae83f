"""Fixtures of the container tests: a Docker daemon, a registry and SeaweedFS started here, and the images.

Everything runs on this machine only: ``dockerd`` with its own socket and no host
network changes (spamops_dev.docker), Debian's ``docker-registry`` on
127.0.0.1, SeaweedFS on loopback.  The images are built by ``make images
BASE_IMAGE=local`` (the Debian base from scripts/images/base.sh, as no public
registry is reachable) into the daemon's persistent data root, so a second run
only re-checks the build cache; ``make push`` pushes them to the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagehelpers import make

from spamops_dev import docker as daemons
from spamops_dev import seaweedfs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

TEST_TAG = "tests"
BUCKET = "spamops"  # the chart's default store and data sources live in s3://spamops/


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.images)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Make the cached base tarball before any test's timeout starts (`make test` did it already)."""
    if os.environ.get("SPAMOPS_IMAGES_BASE", "local") == "local" and any(
        HERE in Path(str(item.fspath)).resolve().parents for item in session.items
    ):
        subprocess.run(["bash", str(ROOT / "scripts/images/base.sh"), "tarball"], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def dockerd() -> Iterator:
    # A short run dir: the daemon's unix sockets must fit in 108 bytes.
    daemon = daemons.Dockerd(Path(tempfile.mkdtemp(prefix="spamops-docker-")))
    started = time.monotonic()
    daemon.start()
    print(f"\ndockerd ready in {time.monotonic() - started:.1f}s (data root {daemon.data_root})", file=sys.stderr)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator:
    server = daemons.DockerRegistry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator:
    server = seaweedfs.SeaweedFS.create(tmp_path_factory.mktemp("seaweedfs"), bucket=BUCKET)
    server.start()
    try:
        yield server
    finally:
        server.kill()  # temporary data; a graceful stop takes 15 s+


@pytest.fixture(scope="session")
def images_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("images-out")


@pytest.fixture(scope="session")
def built(dockerd, images_out) -> dict:
    """Both images, built by ``make images`` (cached after the first run); ``built.json``."""
    started = time.monotonic()
    # A fixed tag: the revision label would otherwise give every commit a new image id,
    # and SBOM, push and signatures would start over although no input changed.
    base = os.environ.get("SPAMOPS_IMAGES_BASE", "local")  # e.g. python:3.11-slim where a registry is reachable
    make("images", dockerd, f"BASE_IMAGE={base}", f"IMAGE_TAG={TEST_TAG}", f"IMAGES_OUT={images_out}")
    doc = json.loads((images_out / "built.json").read_text())
    sizes = ", ".join(f"{t} {i['size'] / 1e6:.0f} MB" for t, i in doc["images"].items())
    print(f"\nmake images: {time.monotonic() - started:.1f}s ({sizes})", file=sys.stderr)
    return doc


@pytest.fixture(scope="session")
def pushed(dockerd, registry, built, images_out) -> dict:
    """``make push`` to the local registry; ``pushed.json`` (the digests the registry returned)."""
    make("push", dockerd, f"REGISTRY={registry.address}/spamops", f"IMAGES_OUT={images_out}")
    return json.loads((images_out / "pushed.json").read_text())


@pytest.fixture
def s3_env(seaweed) -> dict[str, str]:
    """What the trainer's Secret and KServe's storage initializer give a process, for the test server."""
    return {**seaweed.env(), "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
