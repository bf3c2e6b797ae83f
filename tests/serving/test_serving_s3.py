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


def test_the_inference_log_and_feedback_labels_live_in_s3_too(s3, s3_env, model_dir, cli, tmp_path):
    """Log, labels and quality through s3:// URIs: the same store module as every other URI."""
    log, feedback = f"s3://{s3.bucket}/inference-log", f"s3://{s3.bucket}/feedback"
    server = Predictor(
        ["--model_dir", str(model_dir), "--inference-log-uri", log, "--inference-log-flush-seconds", "3600"],
        tmp_path / "log.log",
        env=s3_env,
    ).start()
    try:
        spam = server.post_json("/v1/models/spam:predict", {"instances": [[400, 30]]})
        ham = server.post_json("/v1/models/spam:predict", {"instances": [[20, 0]]})
        assert spam.status == ham.status == 200
    finally:
        server.stop()  # the one batch is written on shutdown
    assert len(open_store(log).list("")) == 1

    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,label\n{spam.headers['x-request-id']},spam\n{ham.headers['x-request-id']},spam\n")
    res = cli("monitor", "feedback", labels, "--inference-log", log, "--feedback", feedback, "-o", "json")
    assert res.code == 0, res.err
    assert res.json()["stored"].startswith(feedback + "/")
    res = cli("monitor", "quality", "--inference-log", log, "--feedback", feedback, "--min-labels", "2", "-o", "json")
    [version] = res.json()["versions"]
    answered = [spam.json()["predictions"][0]["label"], ham.json()["predictions"][0]["label"]]
    assert version["labelled"] == 2 and version["accuracy"] == answered.count("spam") / 2
