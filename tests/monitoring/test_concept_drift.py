"""Concept drift: real messages served and logged, labels uploaded for a subset, quality scraped from the monitor.

The expected figures are computed here, offline, with scikit-learn from the answers the
predictor gave and the true labels of the real data; the monitor only ever sees the
inference log in the store and the uploaded labels.  Then a retrain names the labelled
log as its data source and must ingest exactly the labelled rows.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sklearn.metrics import accuracy_score, f1_score, recall_score

from spamops.registry.store import open_store, read_uri
from spamops.registry.versions import Registry
from spamops_dev.daemon import free_port, wait_for

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_rows(real_data) -> list[tuple[str, int, int]]:
    with open(real_data / "smsspamcollection-1k.csv", newline="") as fh:
        return [(r["label"], int(r["length"]), int(r["punct"])) for r in csv.DictReader(fh)]


def serve_and_log(predictor, rows) -> dict[str, dict]:
    """Send ``rows`` three ways (single V1 with x-request-id, V1 batches, V2 with an id); what each id was answered."""
    answered: dict[str, dict] = {}

    def note(pid, row, label):
        assert pid not in answered
        answered[pid] = {"true": row[0], "predicted": label, "length": row[1], "punct": row[2]}

    singles, batched, v2 = rows[:100], rows[100:700], rows[700:]
    for n, row in enumerate(singles):
        reply = predictor.request(
            "POST",
            "/v1/models/spam:predict",
            json.dumps({"instances": [[row[1], row[2]]]}).encode(),
            {"Content-Type": "application/json", "x-request-id": f"client-{n}"},
        )
        assert reply.status == 200 and reply.headers["x-request-id"] == f"client-{n}"
        note(f"client-{n}", row, reply.json()["predictions"][0]["label"])
    for start in range(0, len(batched), 50):
        chunk = batched[start : start + 50]
        reply = predictor.post_json("/v1/models/spam:predict", {"instances": [[r[1], r[2]] for r in chunk]})
        assert reply.status == 200
        rid = reply.headers["x-request-id"]
        for i, (row, pred) in enumerate(zip(chunk, reply.json()["predictions"], strict=True)):
            note(f"{rid}#{i}", row, pred["label"])
    for start in range(0, len(v2), 25):
        chunk = v2[start : start + 25]
        body = {
            "id": f"v2-{start}",
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": [len(chunk), 2],
                    "data": [[r[1], r[2]] for r in chunk],
                }
            ],
        }
        reply = predictor.post_json("/v2/models/spam/infer", body)
        assert reply.status == 200 and reply.json()["id"] == f"v2-{start}" == reply.headers["x-request-id"]
        labels = next(o["data"] for o in reply.json()["outputs"] if o["name"] == "label")
        for i, (row, label) in enumerate(zip(chunk, labels, strict=True)):
            note(f"v2-{start}#{i}", row, label)
    return answered


class Monitor:
    """``spamops monitor --serve`` (quality only) as a process on loopback."""

    def __init__(self, log: Path, feedback: Path, *extra: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "spamops", "monitor", "--serve", "--no-drift", "--bind", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--interval", "1", "--inference-log", str(log), "--feedback", str(feedback)]
        self.proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self.metrics, 60, what="the monitor's /metrics")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        return {
            line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    def post(self, body: bytes, content_type: str) -> tuple[int, dict]:
        req = urllib.request.Request(f"{self.url}/feedback", data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def csv_of(pairs) -> str:
    return "id,label\n" + "".join(f"{pid},{label}\n" for pid, label in pairs)


def test_rolling_f1_equals_offline_f1_and_a_retrain_ingests_the_labelled_rows(
    real_model, real_rows, start_predictor, cli, tmp_path
):
    _, version, model_dir, _ = real_model
    log, feedback = tmp_path / "inference-log", tmp_path / "feedback"
    # Nothing is written before shutdown: batches this large and this slow leave it all to the final flush.
    predictor = start_predictor(
        model_dir,
        "--inference-log-uri",
        str(log),
        "--inference-log-batch-events",
        "100000",
        "--inference-log-flush-seconds",
        "3600",
    )
    answered = serve_and_log(predictor, real_rows)
    assert len(answered) == len(real_rows)
    predictor.stop()
    logged = sorted(log.rglob("*.jsonl"))
    assert len(logged) == 1, "one batch, written on shutdown"
    lines = logged[0].read_text().splitlines()
    assert len(lines) == 2 * (100 + 600 // 50 + 300 // 25), "a request and a response event per request"

    monitor = Monitor(log, feedback, "--min-labels", "50")
    try:
        # Labels for a subset: 300 by CLI upload (CSV), 100 more by POST (JSON); the other 600 stay unlabelled.
        ids = sorted(answered)
        by_cli, by_post = ids[0:600:2], ids[1:200:2]
        upload = tmp_path / "labels.csv"
        upload.write_text(csv_of((pid, answered[pid]["true"]) for pid in by_cli))
        res = cli("monitor", "feedback", upload, "--inference-log", log, "--feedback", feedback, "-o", "json")
        assert res.code == 0, res.err
        assert res.json()["labels"] == len(by_cli)
        status, body = monitor.post(
            json.dumps([{"id": pid, "label": answered[pid]["true"]} for pid in by_post]).encode(), "application/json"
        )
        assert status == 200 and body["labels"] == len(by_post), body

        # Bad uploads are refused whole, naming each bad row, and change nothing.
        bad = tmp_path / "bad.csv"
        bad.write_text(f"id,label\n{ids[700]},spam\nno-such-id,ham\n{ids[701]},maybe\n{ids[702]}\n")
        res = cli("monitor", "feedback", bad, "--inference-log", log, "--feedback", feedback)
        assert res.code == 2
        assert "line 3: id 'no-such-id' is not in the inference log" in res.err
        assert "line 4: id" in res.err and "'maybe' is not ham or spam" in res.err
        assert "line 5: expected 2 fields" in res.err and "nothing stored" in res.err
        status, body = monitor.post(b"id,label\nno-such-id,spam\n", "text/csv")
        assert status == 400 and body["rows"] == [body["rows"][0]] and "line 2" in body["rows"][0]
        status, body = monitor.post(b"label,id\nspam,x\n", "text/csv")
        assert status == 400 and "expected exactly id,label" in body["error"]

        subset = by_cli + by_post
        key = f'{{model_version="{version}"}}'

        def settled():
            m = monitor.metrics()
            return m if m and m.get(f"spamops_quality_labelled_predictions{key}") == len(subset) else None

        scraped = wait_for(settled, 30, what="the monitor's pass over the uploaded labels")
    finally:
        monitor.stop()

    true = [answered[pid]["true"] for pid in subset]
    predicted = [answered[pid]["predicted"] for pid in subset]
    assert scraped[f"spamops_quality_logged_predictions{key}"] == len(real_rows)
    assert scraped[f"spamops_quality_spam_f1{key}"] == pytest.approx(f1_score(true, predicted, pos_label="spam"))
    assert scraped[f"spamops_quality_accuracy{key}"] == pytest.approx(accuracy_score(true, predicted))
    assert scraped[f"spamops_quality_spam_recall{key}"] == pytest.approx(
        recall_score(true, predicted, pos_label="spam")
    )
    assert 0 <= scraped[f'spamops_label_delay_seconds{{model_version="{version}",quantile="0.5"}}'] < 600

    # A retrain whose only source is the labelled log learns from exactly those rows.
    config = tmp_path / "retrain.yaml"
    config.write_text(yaml.safe_dump({"data": {"sources": [{"inference_log": str(log), "feedback": str(feedback)}]}}))
    retrain_store = tmp_path / "retrain-store"
    res = cli("train", "--config", config, "--store", retrain_store, "--no-promote", "-o", "json")
    assert res.code in (0, 3), res.err  # trained and judged; the gate's verdict is not the point here
    card = Registry(open_store(str(retrain_store)), "spam").card(res.json()["version"])
    [source] = card.data.sources
    assert source.source_schema == "labelled_log" and source.rows == len(subset) and source.bad_rows == 0
    assert source.class_counts == dict(Counter(true))
    ingested = Counter()
    for ref in (card.datasets.train, card.datasets.test):
        text = read_uri(ref.uri).decode()
        ingested.update(tuple(line.split(",")) for line in text.splitlines()[1:])
    expected = Counter(
        (answered[pid]["true"], str(answered[pid]["length"]), str(answered[pid]["punct"])) for pid in subset
    )
    assert ingested == expected
