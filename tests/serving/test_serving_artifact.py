"""A missing, tampered or mismatched artifact is refused before unpickling, and the server stays up, not ready."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from spamops.serving.artifact import ArtifactError, load_artifact
from spamops_dev.predictor import metric

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
        assert reply.json()["reason"] == "checksum_mismatch" and "sha256" in reply.json()["error"], (path, reply.body)
    reply = server.post_json("/v1/models/spam:predict", {"instances": ["hi"]})
    assert reply.status == 503 and reply.json()["reason"] == "checksum_mismatch", reply.body
    reply = server.post_json(
        "/v2/models/spam/infer", {"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}
    )
    assert reply.status == 503 and reply.json()["reason"] == "checksum_mismatch", reply.body
    log = server.log()
    assert "model spam NOT READY (checksum_mismatch)" in log and "refusing to unpickle" in log
    samples = server.metrics()
    assert metric(samples, "spamops_model_ready", model_name="spam") == 0
    assert metric(samples, "spamops_model_load_failures_total", reason="checksum_mismatch") == 1
    # The refused load is over (logged and counted above); the process still answers: no crash loop.
    assert server.get("/v2/health/live").status == 200 and server.proc.poll() is None


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


def card_with_length_max(model_dir: Path, value) -> None:
    card = json.loads((model_dir / "model-card.json").read_text())
    card["feature_statistics"]["length"]["max"] = value
    (model_dir / "model-card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: rewrite_card(d, sha256=None), "'sha256' must be a string"),
        (lambda d: rewrite_card(d, feature_spec="1"), "'feature_spec' must be an object"),
        (lambda d: card_with_length_max(d, "lots"), "feature_statistics.length.max must be a number"),
        (lambda d: rewrite_card(d, files=["model.joblib"]), "'files' must be an object"),
    ],
    ids=["sha256-null", "feature-spec-string", "max-not-a-number", "files-array"],
)
def test_malformed_card_leaves_the_server_up_and_not_ready(start_predictor, model_copy: Path, damage, words):
    damage(model_copy)
    server = start_predictor("--model_dir", str(model_copy))
    reply = server.get("/v2/health/ready")
    assert reply.status == 503 and words in reply.json()["error"], reply.body
    assert server.post_json("/v1/models/spam:predict", {"instances": ["hi"]}).status == 503
    assert "NOT READY (bad_card)" in server.log() and "Traceback" not in server.log()


def test_unreadable_model_file_is_a_refusal_not_a_crash(model_copy: Path, monkeypatch):
    real_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "model.joblib":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(ArtifactError) as err:
        load_artifact(model_copy)
    assert err.value.reason == "unreadable_model" and "Permission denied" in str(err.value)


def test_any_other_load_failure_leaves_the_model_not_ready(model_copy: Path, monkeypatch):
    from spamops.serving import model as model_module

    def explode(*_args, **_kwargs):
        raise RuntimeError("table build blew up")

    monkeypatch.setattr(model_module, "DecisionTable", explode)
    spam = model_module.SpamModel("spam-load-test", model_copy)
    assert spam.load() is False and not spam.ready
    assert "RuntimeError: table build blew up" in spam.load_error
    assert spam.load() is False  # not retried


def test_versioned_infer_on_a_not_ready_model_is_503_not_404(start_predictor, tmp_path: Path):
    server = start_predictor("--model_dir", str(tmp_path / "empty"))
    body = {"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}
    reply = server.post_json("/v2/models/spam/versions/spam_model_20250101_000000/infer", body)
    assert reply.status == 503 and "does not exist" in reply.json()["error"], reply.body
