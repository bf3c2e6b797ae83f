"""A real SeaweedFS S3 server per test session, on free loopback ports, with credentials."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from spamops.registry import MODEL_FILE, Registry, utc_now
from spamops.store import open_store

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("spamops_seaweedfs", ROOT / "scripts" / "seaweedfs.py")
assert _spec and _spec.loader
seaweedfs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = seaweedfs
_spec.loader.exec_module(seaweedfs)

# Settings that would point the client elsewhere if the developer's shell has them.
_FOREIGN_ENV = [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "S3_ENDPOINT",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_MAX_ATTEMPTS",
    "SPAMOPS_S3_CHECK_CONDITIONAL",
    "SPAMOPS_S3_CHECKSUM",
]
TEST_DEADLINE = "4"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator:
    """The running server; tests that kill it must start it again before they return."""
    for attempt in range(3):  # a port picked as free can be taken before weed binds it
        server = seaweedfs.SeaweedFS.create(tmp_path_factory.mktemp("seaweedfs"), bucket="spamops")
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.kill()  # its data is temporary; a graceful stop takes 15 s+


@pytest.fixture
def s3env(seaweed, monkeypatch, tmp_path):
    """Point boto3 at the session server, the way the trainer's Secret does in a cluster."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", TEST_DEADLINE)
    if not seaweed.running():  # a fault test before this one failed to restart it
        seaweed.start()
    return seaweed


@pytest.fixture
def s3_uri(s3env) -> str:
    """A store root of its own for each test: ``s3://spamops/t-<random>``."""
    return f"s3://{s3env.bucket}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def trained_files(tmp_path_factory) -> dict:
    """One demo training run (local store), whose artifacts seed S3 versions quickly."""
    from spamops.cli import main

    local = tmp_path_factory.mktemp("seed-store")
    assert main(["train", "--store", str(local), "--quiet", "--no-promote"]) == 0
    registry = Registry(open_store(str(local)), "spam")
    (info,) = registry.versions()
    card = registry.card(info.version)
    files = {name: registry.store.get(f"spam/{info.version}/{name}").data for name in card["files"]}
    return {"card": card, "model": files.pop(MODEL_FILE), "files": files}


_offset = iter(range(1, 10_000))


@pytest.fixture
def seed_version(trained_files):
    """``seed_version(registry)``: store a complete copy of the seed version via the write protocol."""

    def seed(registry: Registry) -> str:
        created = utc_now() + timedelta(seconds=next(_offset))
        version = registry.reserve_version(created, trained_files["model"])
        card = {
            k: v for k, v in trained_files["card"].items() if k not in ("version", "storage_uri", "files", "sha256")
        }
        registry.complete_version(version, trained_files["model"], trained_files["files"], card)
        return version

    return seed
