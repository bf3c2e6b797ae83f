"""Request ids and the inference log, seen from outside: HTTP responses and the objects in the store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from spamops.features import message_features

TEXT_V2 = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["see you at 8", "WIN cash now!!"]}]}
CE_TYPES = ("org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response")


def events(log: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(log.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_every_response_carries_a_request_id(predictor):
    """V2 echoes the request's id, else the x-request-id header; V1 too; otherwise a fresh id each time."""
    given = predictor.post_json("/v2/models/spam/infer", {"id": "abc-123", **TEXT_V2})
    assert given.status == 200 and given.json()["id"] == "abc-123" == given.headers["x-request-id"]

    header = predictor.request(
        "POST",
        "/v2/models/spam/infer",
        json.dumps(TEXT_V2).encode(),
        {"Content-Type": "application/json", "x-request-id": "from-the-mesh"},
    )
    assert header.json()["id"] == "from-the-mesh" == header.headers["x-request-id"]

    v1 = [predictor.post_json("/v1/models/spam:predict", {"instances": ["hello"]}) for _ in range(3)]
    ids = {reply.headers["x-request-id"] for reply in v1}
    assert len(ids) == 3 and all(len(i) == 36 for i in ids), "a new UUID per request"
    fresh = {predictor.post_json("/v2/models/spam/infer", TEXT_V2).json()["id"] for _ in range(3)}
    assert len(fresh) == 3


def draw(n: int) -> list[str]:
    """``n`` ids as the predictor makes them for requests that bring none."""
    from spamops.serving.inference_log import request_id

    return [request_id(None) for _ in range(n)]


def test_generated_ids_are_version_4_uuids_unique_across_forked_workers():
    """``--workers N`` forks the predictor: every worker must draw its own ids, or feedback joins collide."""
    import multiprocessing
    import uuid

    with multiprocessing.get_context("fork").Pool(2) as pool:
        forked = pool.map(draw, [500, 500])
    ids = draw(500) + forked[0] + forked[1]
    assert len(set(ids)) == 1500
    assert {uuid.UUID(i).version for i in ids} == {4}
    assert len({i[:24] for i in ids}) >= 2, "each process has its own random part"


def test_predictions_are_logged_in_batches_of_n_events_and_flushed_on_shutdown(start_predictor, model_dir, tmp_path):
    log = tmp_path / "log"
    server = start_predictor(
        "--model_dir",
        str(model_dir),
        "--inference-log-uri",
        str(log),
        "--inference-log-batch-events",
        "4",
        "--inference-log-flush-seconds",
        "3600",
    )
    for n in range(5):
        reply = server.post_json("/v2/models/spam/infer", {"id": f"r{n}", **TEXT_V2})
        assert reply.status == 200
    deadline = time.monotonic() + 10
    while len(list(log.rglob("*.jsonl"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [len(p.read_text().splitlines()) for p in sorted(log.rglob("*.jsonl"))] == [4, 4], "two full batches"
    server.stop()
    assert [len(p.read_text().splitlines()) for p in sorted(log.rglob("*.jsonl"))] == [4, 4, 2], "rest at shutdown"

    logged = events(log)
    assert [(e["id"], e["type"]) for e in logged] == [(f"r{n}", t) for n in range(5) for t in CE_TYPES]
    request, response = logged[0], logged[1]
    for event in (request, response):
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["source"] and event["time"].endswith("Z") and event["component"] == "predictor"
    [features] = request["data"]["inputs"]
    assert features["name"] == "features" and features["shape"] == [2, 2]
    expected = [float(v) for text in TEXT_V2["inputs"][0]["data"] for v in message_features(text)]
    assert features["data"] == expected, "the features the model saw, by the shared feature code"
    assert "see you at 8" not in json.dumps(logged), "never the message text"
    answered = {o["name"]: o["data"] for o in response["data"]["outputs"]}
    assert response["data"]["model_version"] and set(answered["label"]) <= {"ham", "spam"}
    assert len(answered["spam_probability"]) == 2


def test_a_partial_batch_is_written_after_flush_seconds(start_predictor, model_dir, tmp_path):
    log = tmp_path / "log"
    server = start_predictor(
        "--model_dir", str(model_dir), "--inference-log-uri", str(log), "--inference-log-flush-seconds", "0.5"
    )
    assert server.post_json("/v1/models/spam:predict", {"instances": ["hi", [150, 9]]}).status == 200
    deadline = time.monotonic() + 10
    while not list(log.rglob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(events(log)) == 2, "written while running, well before the default batch fills"
    samples = server.metrics()
    assert sum(v for k, v in samples.items() if k.startswith("spamops_inference_log_predictions_total")) == 2
    assert samples["spamops_inference_log_batches_total"] == 1


def test_a_bad_inference_log_setting_stops_start_up_naming_it(model_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spamops.serving", "--model_dir", str(model_dir), "--inference-log-uri", "ftp://x/y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--inference-log-uri" in result.stderr and "ftp" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spamops.serving",
            "--model_dir",
            str(model_dir),
            "--inference-log-uri",
            str(tmp_path),
            "--inference-log-batch-events",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--inference-log-batch-events must be at least 2" in result.stderr
