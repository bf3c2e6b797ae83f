"""-o json is exactly one JSON document on stdout, for every command; progress goes to stderr.

Each command runs as a user runs it (in-process ``spamops ARGS``) on a real demo store; the
rollout commands need an API server and are checked in tests/k8s/test_rollout_output.py;
``render isvc`` needs versions stored on S3 (the chart's schema) and is checked in
tests/k8s/test_rollout_standard.py; ``monitor`` needs Prometheus (tests/monitoring/test_drift.py) and
``trigger data`` a CronJob (tests/k8s/test_retrain_trigger.py); ``trigger serve`` is a server
and prints no document.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile

import pytest

from spamops.cli import commands
from spamops.serving.inference_log import InferenceLog

# groups whose -o json is checked by another suite (named in the docstring)
ELSEWHERE = {"rollout", "render", "monitor", "trigger"}


def _one_document(result) -> object:
    assert result.code == 0, result.err
    return json.loads(result.out)  # raises on any extra text before or after the document


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """Two demo versions: the first promoted, the second stored beside it."""
    from spamops.cli import main

    store = tmp_path_factory.mktemp("cli-output") / "store"
    versions = []
    for seed in (1, 2):
        config = store.parent / f"seed{seed}.yaml"
        config.write_text(f"train:\n  seed: {seed}\n")
        extra = ["--no-promote"] if seed == 2 else []
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # a module-scoped fixture cannot use capsys
            assert main(["train", "--store", str(store), "--config", str(config), "--quiet", "-o", "json", *extra]) in (
                0,
                3,
            )
        versions.append(json.loads(out.getvalue())["version"])
    return store, versions


def test_train_json_is_one_document_while_its_progress_goes_to_stderr(cli, store):
    """Progress (the grid search's lines included) goes to stderr: stdout is the one -o json document."""
    result = cli("train", "--store", store, "-o", "json")
    doc = _one_document(result)
    assert doc["version"] and doc["gate"]["passed"] is True
    assert "grid search:" in result.err


def test_every_command_has_parseable_json_output(cli, demo_store, tmp_path):
    store, (first, second) = demo_store
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("SMSSpamCollection", "ham\thello there\nspam\tWIN a prize now! call 0800\n")
    zipped = tmp_path / "sms.zip"
    zipped.write_bytes(archive.getvalue())
    log, feedback = tmp_path / "inference-log", tmp_path / "feedback"
    writer = InferenceLog(str(log), "spam", flush_seconds=0.1)
    writer.record("req-1", first, [(12.0, 1.0)], [0.0], [False])  # the predictor's own log writer
    writer.close()
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nreq-1,ham\n")
    quality = ["--inference-log", log, "--feedback", feedback]
    runs = {
        "config defaults": ["config", "defaults"],
        "monitor feedback": ["monitor", "feedback", labels, *quality],
        "monitor quality": ["monitor", "quality", *quality, "--min-labels", "1"],
        "monitor": ["monitor", "--no-drift", *quality, "--min-labels", "1"],  # drift's -o json: tests/monitoring
        "data fetch-uci": [
            "data",
            "fetch-uci",
            "--url",
            zipped.as_uri(),
            "--out",
            tmp_path / "uci.csv",
            "--sha256",
            hashlib.sha256(archive.getvalue()).hexdigest(),
        ],
        "models list": ["models", "list", "--store", store],
        "models show": ["models", "show", first, "--store", store],
        "models pull": ["models", "pull", first, "--store", store],  # + a fresh DIR per run
        "gate": ["gate", second, "--store", store],
        "promote": ["promote", second, "--store", store, "--force", "--reason", "test of -o json"],
        "rollback": ["rollback", "--store", store],
        "models history": ["models", "history", "--store", store],
        "models schema": ["models", "schema"],
        "models gc": ["models", "gc", "--store", store, "--dry-run"],
    }
    documents = {}
    for name, argv in runs.items():
        for switch in (["-o", "json"], ["--json"]):
            dest = [tmp_path / f"pulled{switch[0]}"] if name == "models pull" else []
            result = cli(*argv, *dest, *switch)
            if name == "gate":
                assert result.code in (0, 3), result.err
                result.code = 0
            documents[name, switch[0]] = _one_document(result)
            if name in ("promote", "rollback"):
                break  # they move the pointer: once each
    untested = {n for n, _ in commands() if n not in runs and n.split()[0] not in ELSEWHERE} - {"train"}
    assert not untested, f"commands without a -o json check: {sorted(untested)}"

    assert documents["models list", "-o"] == documents["models list", "--json"]
    assert documents["models list", "-o"]["production"]["version"] == first
    assert documents["models show", "-o"]["version"] == first
    assert documents["models pull", "-o"] == {"version": first, "dest": str(tmp_path / "pulled-o"), "verified": True}
    assert documents["config defaults", "-o"]["gate"]["min_accuracy"] == 0.85
    assert documents["data fetch-uci", "-o"] == {"out": str(tmp_path / "uci.csv"), "messages": 2, "spam": 1}
    assert documents["promote", "-o"]["production"] == second and documents["promote", "-o"]["changed"] is True
    assert documents["rollback", "-o"]["production"] == first
    assert documents["rollback", "-o"]["previous"] == second
    assert documents["models gc", "-o"] == documents["models gc", "--json"]
    assert documents["models gc", "-o"]["dry_run"] is True and documents["models gc", "-o"]["removed"] == []
    assert documents["monitor feedback", "-o"]["labels"] == 1
    assert documents["monitor", "-o"] == documents["monitor quality", "-o"]
    [quality_of] = documents["monitor quality", "-o"]["versions"]
    assert (quality_of["model_version"], quality_of["labelled"], quality_of["accuracy"]) == (first, 1, 1.0)
