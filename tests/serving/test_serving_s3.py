"""``--storage-uri s3://…``: the predictor pulls a version from a real S3 server (SeaweedFS) and verifies it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spamops.cli import main
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.predictor import Predictor
from spamops_dev.seaweedfs import SeaweedFS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator:
    server = SeaweedFS.create(tmp_path_factory.mktemp("seaweedfs"), bucket="serving")
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=3)


@pytest.fixture
def s3_env(s3, monkeypatch, tmp_path) -> dict[str, str]:
    env = {
        **s3.env(),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_storage_uri_pulls_from_s3_and_refuses_a_tampered_object(s3, s3_env, tmp_path):
    store = f"s3://{s3.bucket}/serving-test"
    assert main(["train", "--store", store, "--quiet"]) == 0
    registry = Registry(open_store(store), "spam")
    version = registry.production().version

    server = Predictor(
        ["--model_dir", str(tmp_path / "pulled"), "--storage-uri", registry.version_uri(version)],
        tmp_path / "ok.log",
        env=s3_env,
    ).start()
    try:
        assert server.get("/v1/models/spam").json()["version"] == version
        assert server.post_json("/v1/models/spam:predict", {"instances": ["hi"]}).status == 200
    finally:
        server.stop()

    registry.store.put(f"spam/{version}/model.joblib", b"not the model")  # tampered in the bucket
    proc = subprocess.run(
        [sys.executable, "-m", "spamops.serving", "--model_dir", str(tmp_path / "tampered"), "--enable_grpc", "false"]
        + ["--storage-uri", registry.version_uri(version)],
        capture_output=True,
        text=True,
        env={**os.environ, **s3_env},
        timeout=60,
    )
    assert proc.returncode != 0 and registry.version_uri(version) in proc.stderr, proc.stderr
    assert "sha256" in proc.stderr or "checksum" in proc.stderr, proc.stderr
