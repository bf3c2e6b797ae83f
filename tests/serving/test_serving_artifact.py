"""A missing, tampered or mismatched artifact is refused before unpickling, and the server stays up, not ready."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest
from servinghelpers import metric

from spamops.serving.artifact import ArtifactError, load_artifact

NOT_READY_PATHS = ["/v2/health/ready", "/v1/models/spam", "/v2/models/spam/ready"]


def rewrite_card(model_dir: Path, **changes) -> None:
    path = model_dir / "model-card.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def test_tampered_model_is_refused_and_the_server_stays_not_ready(start_predictor, model_copy: Path):
    with (model_copy / "model.joblib").open("ab") as f:
        f.write(b"\0")  # one extra byte: a different file than the card vouches for
    server = start_predictor("--model_dir", str(model_copy))
    for path in NOT_READY_PATHS:
        reply = server.get(path)
        assert reply.status == 503, (path, reply.body)
    assert "sha256" in server.get("/v2/health/ready").json()["error"]
    reply = server.post_json("/v1/models/spam:predict", {"instances": ["hi"]})
    assert reply.status == 503
    reply = server.post_json(
        "/v2/models/spam/infer", {"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}
    )
    assert reply.status == 503
    assert server.get("/v2/health/live").status == 200  # alive: no crash loop
    time.sleep(1)
    assert server.proc.poll() is None
    log = server.log()
    assert "model spam NOT READY (checksum_mismatch)" in log and "refusing to unpickle" in log
    samples = server.metrics()
    assert metric(samples, "spamops_model_ready", model_name="spam") == 0
    assert metric(samples, "spamops_model_load_failures_total", reason="checksum_mismatch") == 1


def test_missing_artifact_is_not_ready_with_the_reason(start_predictor, tmp_path: Path):
    server = start_predictor("--model_dir", str(tmp_path / "empty"))
    reply = server.get("/v2/health/ready")
    assert reply.status == 503 and "does not exist" in reply.json()["error"]
    assert "NOT READY (missing_dir)" in server.log()


def test_malicious_pickle_is_never_unpickled(model_copy: Path, tmp_path: Path):
    """A joblib file is code: a replaced model must not run even when someone also edits nothing else."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (model_copy / "model.joblib").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ArtifactError) as err:
        load_artifact(model_copy)
    assert err.value.reason == "checksum_mismatch"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "model-card.json").unlink(), "missing_card"),
        (lambda d: (d / "model.joblib").unlink(), "missing_model"),
        (lambda d: (d / "model-card.json").write_text("{not json"), "bad_card"),
        (
            lambda d: rewrite_card(d, feature_spec={"version": "0", "names": ["length", "punct"]}),
            "feature_spec_mismatch",
        ),
        (
            lambda d: rewrite_card(d, feature_spec={"version": "1", "names": ["punct", "length"]}),
            "feature_spec_mismatch",
        ),
        (lambda d: rewrite_card(d, sha256="0" * 64), "checksum_mismatch"),
        (lambda d: rewrite_card(d, files={"model.joblib": "0" * 64}), "checksum_mismatch"),
    ],
    ids=["no-card", "no-model", "bad-card", "spec-version", "spec-names", "card-sha", "files-sha"],
)
def test_every_refusal_names_its_reason(model_copy: Path, damage, reason):
    damage(model_copy)
    with pytest.raises(ArtifactError) as err:
        load_artifact(model_copy)
    assert err.value.reason == reason
    assert str(model_copy) in str(err.value)


def test_intact_artifact_loads(model_dir: Path, production_version: str):
    artifact = load_artifact(model_dir)
    assert artifact.version == production_version
    assert list(artifact.pipeline.classes_) == [0, 1]
