"""Shadow deployment: a second model scores the same instances; only the primary answers.

Two versions trained here by ``spamops train`` with different seeds, splits and
grids (so they disagree on some inputs), served by real predictor processes:
one with ``--shadow-storage-uri`` and one without, answering the same requests.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from spamops.cli import main
from spamops.features import features_matrix
from spamops.records import MODEL_FILE
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.serving.artifact import load_artifact
from spamops.serving.lookup import pipeline_scores
from spamops.training.demo_data import demo_data_path
from spamops_dev import slow_model
from spamops_dev.predictor import Predictor, metric

PREDICT = "/v1/models/spam:predict"
INFER = "/v2/models/spam/infer"
SHADOW = "/v1/models/spam/shadow"
# The shadow's training run: another seed and split, and a one-neighbour model, unlike production's grid search.
SHADOW_CONFIG = {"train": {"seed": 7, "test_size": 0.3, "grid": {"n_neighbors": [1], "weights": ["uniform"], "p": [1]}}}


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> tuple[Path, str, str]:
    """A store with a production version (the primary) and a second, different one (the shadow)."""
    root = tmp_path_factory.mktemp("shadow-store")
    store = root / "store"
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    config = root / "shadow.yaml"
    config.write_text(yaml.safe_dump(SHADOW_CONFIG))
    time.sleep(1.1)  # version ids are UTC seconds
    # The gate may refuse it against the champion (exit 3): a refused version is still stored, and
    # shadowing it on real traffic is exactly how one learns more than the held-out rows say.
    assert main(["train", "--store", str(store), "--config", str(config), "--no-promote", "--quiet"]) in (0, 3)
    registry = Registry(open_store(str(store)), "spam")
    primary = registry.production().version
    (shadow,) = [v.version for v in registry.versions() if v.version != primary]
    return store, primary, shadow


def offline(store: Path, version: str, X: np.ndarray, dest: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(P(spam), is_spam)`` of ``version`` straight from its verified pipeline, outside any server."""
    Registry(open_store(str(store)), "spam").pull(version, dest)
    return pipeline_scores(load_artifact(dest).pipeline, X)


def inputs() -> tuple[list, np.ndarray]:
    """Instances as clients send them: the demo messages' texts and a grid of feature pairs; and their features."""
    with demo_data_path().open(newline="") as f:
        texts = [r["message"] for r in csv.DictReader(f)][:150]
    pairs = [[length, punct] for length in range(0, 260, 9) for punct in range(0, 12, 2)]
    return [*texts, *pairs], np.vstack([features_matrix(texts), np.asarray(pairs, dtype=float)])


def wait_compared(server: Predictor, n: int, timeout: float = 30) -> dict:
    """The shadow's status once it has dealt with ``n`` instances (compared or dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.get(SHADOW).json()
        done = status["instances"]["compared"] + status["instances"]["dropped"] + status["instances"]["failed"]
        if (done >= n and status["queue"]["depth"] == 0) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pair(versions, tmp_path_factory):
    """The primary alone, and the primary with the shadow: two predictors on the same production version."""
    store, _, shadow = versions
    logs = tmp_path_factory.mktemp("shadow-logs")
    alone = Predictor(["--storage-uri", f"{store}/spam/", "--bind", "127.0.0.1"], logs / "alone.log").start()
    shadowed = Predictor(
        ["--storage-uri", f"{store}/spam/", "--bind", "127.0.0.1", "--max_batch_size", "50"],
        logs / "shadowed.log",
        env={"SHADOW_STORAGE_URI": f"{store}/spam/{shadow}/"},
    ).start()
    yield alone, shadowed
    alone.stop()
    shadowed.stop()


def test_answers_are_the_primarys_and_agreement_equals_offline(pair, versions, tmp_path):
    alone, shadowed = pair
    store, primary, shadow = versions
    instances, X = inputs()
    p_prob, p_spam = offline(store, primary, X, tmp_path / "primary")
    s_prob, s_spam = offline(store, shadow, X, tmp_path / "shadow")
    differ = p_spam != s_spam
    assert 0 < np.count_nonzero(differ) < len(X)  # the two models really differ, and not everywhere

    labels = []
    for start in range(0, len(instances), 50):  # V1 batches of 50
        body = {"instances": instances[start : start + 50]}
        answer = shadowed.post_json(PREDICT, body)
        assert answer.status == 200
        assert answer.json() == alone.post_json(PREDICT, body).json()  # the shadow changes nothing
        labels += [p["label"] == "spam" for p in answer.json()["predictions"]]
        assert {p["model_version"] for p in answer.json()["predictions"]} == {primary}
    assert labels == p_spam.tolist()  # the primary's labels, not the shadow's where they differ
    tensor = X[-40:]  # the same features once more as a V2 tensor
    v2 = {
        "id": "shadow-v2",
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": list(tensor.shape), "data": tensor.ravel().tolist()}
        ],
    }
    answer = shadowed.post_json(INFER, v2)
    assert answer.status == 200 and answer.json() == alone.post_json(INFER, v2).json()

    n = len(X) + len(tensor)
    status = wait_compared(shadowed, n)
    both_p = np.concatenate([p_spam, p_spam[-40:]])
    both_s = np.concatenate([s_spam, s_spam[-40:]])
    agreement = float(np.mean(both_p == both_s))
    samples = shadowed.metrics()
    pair_labels = {"model_version": primary, "shadow_version": shadow}
    assert metric(samples, "spamops_shadow_compared_total", **pair_labels) == n
    assert metric(samples, "spamops_shadow_agreement_ratio", **pair_labels) == pytest.approx(agreement, abs=1e-12)
    assert metric(samples, "spamops_shadow_disagreements_total", direction="ham_to_spam", **pair_labels) == (
        np.count_nonzero(~both_p & both_s)
    )
    assert metric(samples, "spamops_shadow_disagreements_total", direction="spam_to_ham", **pair_labels) == (
        np.count_nonzero(both_p & ~both_s)
    )
    for side, spam in (("primary", both_p), ("shadow", both_s)):
        assert metric(samples, "spamops_shadow_spam_rate", side=side, **pair_labels) == pytest.approx(spam.mean())
    assert (
        metric(samples, "spamops_shadow_requests_total", outcome="compared", **pair_labels)
        == len(range(0, len(instances), 50)) + 1
    )
    assert metric(samples, "spamops_shadow_dropped_total", **pair_labels) == 0
    assert metric(samples, "spamops_shadow_ready", model_name="spam") == 1

    # The debug endpoint: the same counts, and the latest disagreements with features and answers only.
    assert status["enabled"] and (status["primary_version"], status["shadow_version"]) == (primary, shadow)
    assert status["agreement_rate"] == pytest.approx(agreement, abs=1e-12)
    sample = status["sample"]
    assert 0 < len(sample) <= status["sample_capacity"]
    assert len(sample) == min(status["sample_capacity"], int(np.count_nonzero(both_p != both_s)))
    offline_disagreements = {
        (float(x[0]), float(x[1])): (bool(a), bool(b))
        for x, a, b in zip(np.vstack([X, tensor]), both_p, both_s, strict=True)
        if a != b
    }
    for entry in sample:
        assert set(entry) == {"at", "features", "primary", "shadow"}  # no message text
        key = (entry["features"]["length"], entry["features"]["punct"])
        assert offline_disagreements[key] == (entry["primary"]["label"] == "spam", entry["shadow"]["label"] == "spam")


def test_a_slow_shadow_drops_counted_work_and_the_primary_keeps_answering(start_predictor, versions, tmp_path):
    store, primary, base = versions
    slow_store = Path(shutil.copytree(store, tmp_path / "store"))
    # A test artifact, not a product knob: the shadow version's model sleeps half a second per scoring call.
    shadow = slow_model.store_slow_version(Registry(open_store(str(slow_store)), "spam"), base, seconds=0.5)
    server = start_predictor(
        "--storage-uri",
        f"{store}/spam/",
        "--bind",
        "127.0.0.1",
        "--shadow-storage-uri",
        f"{slow_store}/spam/{shadow}/",
        "--shadow_queue_size",
        "2",
        env=slow_model.process_env(),  # the predictor unpickles spamops_dev.slow_model.SlowPipeline
    )
    sent = 40
    for i in range(sent):
        answer = server.post_json(PREDICT, {"instances": [[20 + i, i % 5]]})
        assert answer.status == 200 and answer.json()["predictions"][0]["model_version"] == primary
    status = wait_compared(server, sent)
    assert status["enabled"] and status["shadow_version"] == shadow, status["error"]
    pair_labels = {"model_version": primary, "shadow_version": shadow}
    samples = server.metrics()
    dropped = metric(samples, "spamops_shadow_dropped_total", **pair_labels)
    compared = metric(samples, "spamops_shadow_compared_total", **pair_labels)
    assert dropped > 0 and dropped == status["instances"]["dropped"]
    assert metric(samples, "spamops_shadow_requests_total", outcome="dropped", **pair_labels) == dropped
    assert dropped + compared == sent  # every answered instance is either compared or counted as dropped
    assert metric(samples, "spamops_shadow_queue_capacity", **pair_labels) == 2


def test_a_bad_shadow_uri_is_a_clear_error_and_the_primary_keeps_serving(start_predictor, versions):
    store, primary, _ = versions
    uri = f"{store}/spam/spam_model_20000101_000000/"
    server = start_predictor("--storage-uri", f"{store}/spam/", "--bind", "127.0.0.1", "--shadow-storage-uri", uri)
    assert server.get("/v2/health/ready").status == 200  # readiness is the primary's alone
    answer = server.post_json(PREDICT, {"instances": ["free entry! call now"]})
    assert answer.status == 200 and answer.json()["predictions"][0]["model_version"] == primary
    status = server.get(SHADOW).json()
    assert (status["enabled"], status["reason"]) == (False, "pull_failed")
    assert uri in status["error"]
    assert "SHADOW DISABLED (pull_failed)" in server.log() and uri in server.log()
    samples = server.metrics()
    assert metric(samples, "spamops_shadow_ready", model_name="spam") == 0
    assert metric(samples, "spamops_shadow_load_failures_total", model_name="spam", reason="pull_failed") == 1
    assert metric(samples, "spamops_shadow_compared_total") == 0


def test_a_tampered_or_identical_shadow_is_refused(start_predictor, versions, tmp_path):
    store, primary, shadow = versions
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    artifact = copy / "spam" / shadow / MODEL_FILE
    artifact.write_bytes(artifact.read_bytes() + b"\0")  # the card's sha256 no longer matches
    server = start_predictor(
        "--storage-uri", f"{store}/spam/", "--bind", "127.0.0.1", "--shadow-storage-uri", f"{copy}/spam/{shadow}/"
    )
    status = server.get(SHADOW).json()
    assert not status["enabled"] and "checksum mismatch" in status["error"] and shadow in status["error"]
    assert server.post_json(PREDICT, {"instances": [[30, 1]]}).status == 200
    same = start_predictor(
        "--storage-uri", f"{store}/spam/", "--bind", "127.0.0.1", "--shadow-storage-uri", f"{store}/spam/{primary}/"
    )
    assert same.get(SHADOW).json()["reason"] == "same_version"


def test_without_a_shadow_the_debug_endpoint_says_how_to_enable_one(predictor):
    answer = predictor.get(SHADOW)
    assert answer.status == 404 and answer.json()["reason"] == "no_shadow"
    assert "SHADOW_STORAGE_URI" in answer.json()["error"]


def test_shadow_bounds_are_validated_at_start(model_dir, tmp_path):
    server = Predictor(["--model_dir", str(model_dir), "--shadow_queue_size", "0"], tmp_path / "p.log")
    with pytest.raises(RuntimeError, match="shadow_queue_size must be >= 1"):
        server.start(timeout=30)
