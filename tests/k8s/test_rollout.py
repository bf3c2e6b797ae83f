"""`spamops rollout` against a real kube-apiserver with KServe's CRD (Serverless mode).

No KServe controller runs in this control plane, so these tests prove what
spamops asks the API server for (the spec KServe acts on), the Events, the
annotation, the Lease and the store record - and, since nothing ever reports the
canary Ready, the progress-deadline abort.  The analysis itself is tested
against real Prometheus in tests/deploy.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from k8shelpers import NAMESPACE, Kube, train_versions

from spamops.registry.store import open_store
from spamops.registry.versions import Registry


@pytest.fixture
def isvc(clean: Kube) -> Kube:
    """The chart's InferenceService, applied as a user would; no Lease or Events left from before."""
    clean.kubectl("delete", "-n", NAMESPACE, "leases.coordination.k8s.io,events", "--all", "--ignore-not-found")
    docs = [d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount", "InferenceService")]
    clean.apply(docs)
    return clean


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str, str]:
    """A store with two promoted versions, trained once per module."""
    store, versions = train_versions(tmp_path_factory.mktemp("rollout-store"), (42, 1))
    return store, versions[0], versions[1]


@pytest.fixture
def production(trained, tmp_path) -> tuple[str, str, str]:
    """A private copy of the two-version store: (store, first, second = production)."""
    store, first, second = trained
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    # storage URIs in cards/pointer name the original store; rewrite them for the copy
    for path in copy.rglob("*.json"):
        path.write_text(path.read_text().replace(str(store), str(copy)))
    return str(copy), first, second


def _isvc(kube: Kube) -> dict:
    return json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)


def _storage_uri(predictor: dict) -> str:
    (container,) = [c for c in predictor["containers"] if c["name"] == "kserve-container"]
    return {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"]


def _events(kube: Kube) -> list[tuple[str, str]]:
    items = json.loads(
        kube.kubectl(
            "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=spam", "-o", "json"
        ).stdout
    )["items"]
    items.sort(key=lambda e: e["metadata"]["name"])  # spamops names them by time
    return [(e["reason"], e["message"]) for e in items if e["source"].get("component") == "spamops-rollout"]


def _records(store: str, version: str) -> list[dict]:
    reg = Registry(open_store(store), "spam")
    keys = sorted(k for k in reg.store.list(f"spam/{version}/rollouts/"))
    return [json.loads(reg.store.get(k).data) for k in keys]


def test_start_status_abort_promote_drive_the_inference_service(isvc, production, cli):
    store, _, version = production
    kc = ("--store", store, "--kubeconfig", isvc.kubeconfig)
    before = _isvc(isvc)["spec"]["predictor"]

    started = cli("rollout", "start", "--percent", 10, *kc)
    assert started.code == 0, started.err
    live = _isvc(isvc)
    after = live["spec"]["predictor"]
    assert after["canaryTrafficPercent"] == 10
    assert _storage_uri(after) == f"file://{store}/spam/{version}/"
    (old,), (new,) = before["containers"], after["containers"]
    assert {k: v for k, v in new.items() if k != "env"} == {k: v for k, v in old.items() if k != "env"}
    notes = live["metadata"]["annotations"]
    assert notes["rollout.spamops.io/stable-storage-uri"] == "s3://spamops/models/spam/bootstrap/"
    assert json.loads(notes["rollout.spamops.io/state"])["verdict"] == "started"

    status = cli("rollout", "status", *kc)
    header, row = status.out.splitlines()
    assert header.split() == [
        "NAME",
        "MODE",
        "READY",
        "STABLE",
        "STABLE%",
        "CANARY",
        "CANARY%",
        "ROUTED%",
        "STEP",
        "VERDICT",
    ]
    assert row.split() == ["spam", "serverless", "False", "bootstrap", "90", version, "10", "-", "0", "started"]
    as_json = cli("rollout", "status", "-o", "json", *kc).json()
    assert (as_json["canary_version"], as_json["canary_percent"], as_json["mode"]) == (version, 10, "serverless")

    aborted = cli("rollout", "abort", "--reason", "looked wrong", *kc)
    assert aborted.code == 0, aborted.err
    assert _isvc(isvc)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert _storage_uri(_isvc(isvc)["spec"]["predictor"]) == f"file://{store}/spam/{version}/"

    promoted = cli("rollout", "promote", *kc)
    assert promoted.code == 0, promoted.err
    assert "canaryTrafficPercent" not in _isvc(isvc)["spec"]["predictor"]
    assert cli("rollout", "status", "-o", "json", *kc).json()["stable_version"] == version

    reasons = [r for r, _ in _events(isvc)]
    assert reasons == ["CanaryStarted", "CanaryAborted", "CanaryPromoted"]
    assert "looked wrong" in _events(isvc)[1][1]
    records = _records(store, version)
    assert [r["action"] for r in records] == ["started", "aborted", "promoted"]
    assert [r["seq"] for r in records] == [0, 1, 2] and records[1]["reason"].startswith("looked wrong")

    again = cli("rollout", "abort", *kc)
    assert again.code == 2 and "no canary in progress" in again.err


def test_abort_moves_the_production_pointer_back_with_the_reason(isvc, production, cli):
    store, first, second = production
    kc = ("--store", store, "--kubeconfig", isvc.kubeconfig)
    assert cli("rollout", "start", second, "--percent", 25, *kc).code == 0

    aborted = cli("rollout", "abort", "--reason", "spam rate doubled", *kc)

    assert aborted.code == 0, aborted.err
    reg = Registry(open_store(store), "spam")
    pointer = reg.production()
    assert pointer.version == first and pointer.action == "rollback"
    assert pointer.reason == "canary aborted: spam rate doubled"
    (_, message), *_ = [e for e in _events(isvc) if e[0] == "CanaryAborted"]
    assert f"production pointer back to {first}" in message


def test_a_canary_never_ready_is_aborted_at_the_progress_deadline(isvc, production, cli, tmp_path):
    """No controller reports the new revision Ready here: exactly the "revision never gets Ready" case."""
    store, first, second = production
    config = tmp_path / "rollout.yaml"
    config.write_text(
        yaml.safe_dump({"store": store, "rollout": {"analysis": {"interval": 1, "progress_deadline": 2}}})
    )

    auto = cli("rollout", "auto", second, "--config", config, "--kubeconfig", isvc.kubeconfig, "-o", "json")

    assert auto.code == 1, auto.err
    events = [json.loads(line) for line in auto.out.splitlines()]
    assert events[0]["event"] == "CanaryStarted" and events[0]["weight"] == 10
    assert {e["event"] for e in events[1:-1]} == {"CanaryHeld"}
    assert events[-1]["event"] == "CanaryAborted" and "not Ready within progress_deadline 2s" in events[-1]["message"]
    assert _isvc(isvc)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert [r for r, _ in _events(isvc)][-1] == "CanaryAborted"
    assert Registry(open_store(store), "spam").production().version == first
    assert _records(store, second)[-1]["action"] == "aborted"


def test_a_second_rollout_fails_fast_naming_the_lease_holder(isvc, production, cli):
    store, _, _ = production
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "spamops-rollout-spam", "namespace": NAMESPACE},
        "spec": {"holderIdentity": "ci-runner-42", "leaseDurationSeconds": 120, "acquireTime": now, "renewTime": now},
    }
    isvc.apply([lease])

    second = cli("rollout", "start", "--store", store, "--kubeconfig", isvc.kubeconfig)

    assert second.code == 1
    assert "another rollout holds lease spamops/spamops-rollout-spam (holder ci-runner-42" in second.err
    assert "canaryTrafficPercent" not in _isvc(isvc)["spec"]["predictor"]


def test_cluster_errors_are_one_clear_line_with_a_stable_exit_code(production, cli, tmp_path):
    store, _, _ = production
    missing = cli("rollout", "status", "--kubeconfig", tmp_path / "nope")
    assert missing.code == 2
    assert missing.err.strip() == (
        f"spamops: error: kubeconfig {tmp_path / 'nope'} (--kubeconfig) does not exist; "
        "pass --kubeconfig FILE, set KUBECONFIG, or run inside the cluster"
    )
    dead = tmp_path / "dead.yaml"
    dead.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "x", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
            }
        )
    )
    unreachable = cli("rollout", "start", "--store", store, "--kubeconfig", dead)
    assert unreachable.code == 1
    (line,) = unreachable.err.splitlines()
    assert line.startswith("spamops: error: API server https://127.0.0.1:1 unreachable (")
    assert "MaxRetryError" not in line and "check --kubeconfig/--context" in line
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [")
    assert cli("rollout", "status", "--kubeconfig", broken).code == 2


def test_out_of_range_percent_and_missing_service_are_clear_errors(isvc, production, cli):
    store, _, _ = production
    kc = ("--store", store, "--kubeconfig", isvc.kubeconfig)
    bad = cli("rollout", "start", "--percent", 150, *kc)
    assert bad.code == 2 and "--percent 150" in bad.err
    missing = cli("rollout", "start", "--isvc", "nope", *kc)
    assert missing.code == 2 and f"inferenceservice {NAMESPACE}/nope: not found" in missing.err


def test_a_training_run_with_rollout_enabled_starts_the_canary(isvc, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(isvc.kubeconfig))
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump({"store": str(tmp_path / "store"), "rollout": {"enabled": True, "canary_percent": 25}})
    )

    result = cli("train", "--config", config, "--json", "--quiet")

    assert result.code == 0, result.err
    out = result.json()
    assert out["rollout"]["canary_percent"] == 25
    assert _storage_uri(_isvc(isvc)["spec"]["predictor"]) == out["storage_uri"]
    assert _isvc(isvc)["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert [r for r, _ in _events(isvc)] == ["CanaryStarted"]


def test_auto_once_runs_one_check_and_the_next_run_continues_from_the_annotation(isvc, production, cli, tmp_path):
    """`--once` (a CronJob/CI driver): one decision per run; the counters live in the annotation."""
    store, _, second = production
    config = tmp_path / "rollout.yaml"
    config.write_text(yaml.safe_dump({"store": store, "rollout": {"analysis": {"progress_deadline": 600}}}))
    args = ("--config", config, "--kubeconfig", isvc.kubeconfig, "-o", "json")

    first = cli("rollout", "auto", second, "--once", *args)
    again = cli("rollout", "auto", "--once", *args)

    assert first.code == 0 and again.code == 0, first.err + again.err
    assert [json.loads(line)["event"] for line in first.out.splitlines()] == ["CanaryStarted", "CanaryHeld"]
    (held,) = [json.loads(line) for line in again.out.splitlines()]
    assert held["event"] == "CanaryHeld" and "waiting for the canary to become Ready" in held["message"]
    state = json.loads(_isvc(isvc)["metadata"]["annotations"]["rollout.spamops.io/state"])
    assert (state["seq"], state["verdict"], state["weight"]) == (2, "waiting", 10)
    assert [r["action"] for r in _records(store, second)] == ["started", "held", "held"]


def test_blue_green_switch_of_a_version_that_never_gets_ready_is_aborted(isvc, production, cli, tmp_path):
    """Switch deploys at 0 % and waits for Ready; no controller reports it here, so the deadline aborts it."""
    store, first, second = production
    config = tmp_path / "rollout.yaml"
    config.write_text(yaml.safe_dump({"store": store, "rollout": {"analysis": {"progress_deadline": 2}}}))

    switched = cli("rollout", "switch", second, "--config", config, "--kubeconfig", isvc.kubeconfig)

    assert switched.code == 1, switched.err
    assert _isvc(isvc)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert [r for r, _ in _events(isvc)] == ["CanaryStarted", "CanaryAborted"]
    assert "not Ready within progress_deadline 2s" in _events(isvc)[-1][1]
    back = cli("rollout", "switch-back", "--config", config, "--kubeconfig", isvc.kubeconfig)
    assert back.code == 0, back.err
    assert _isvc(isvc)["spec"]["predictor"]["canaryTrafficPercent"] == 0
