"""``spamops render isvc --shadow`` and ``spamops rollout shadow`` against a real kube-apiserver.

No KServe controller runs here, so these tests prove what spamops asks the API
server for: the predictor's env (``SHADOW_STORAGE_URI`` and, for an ``s3://``
shadow, the S3 credentials the predictor needs to pull it itself, both from the
chart), the Events and the store record.  What the predictor does with the env
is tested with real predictor processes in tests/serving/test_serving_shadow.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from k8shelpers import NAMESPACE, Kube, train_versions

from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.ports import free_port

BUCKET = "s3://spamops/models"  # the cards name S3 URIs, as in the cluster (the chart's schema wants them)
S3_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "S3_VERIFY_SSL", "AWS_DEFAULT_REGION"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, str, str]:
    """Two promoted versions whose cards name S3 URIs: (store, older, production)."""
    store, versions = train_versions(tmp_path_factory.mktemp("shadow-rollout-store"), (42, 1), "--force-new")
    for path in Path(store).rglob("*.json"):
        path.write_text(path.read_text().replace(f"file://{store}", BUCKET))
    return str(store), versions[0], versions[1]


@pytest.fixture
def isvc(clean: Kube) -> Kube:
    clean.kubectl("delete", "-n", NAMESPACE, "leases.coordination.k8s.io,events", "--all", "--ignore-not-found")
    clean.apply([d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount", "InferenceService")])
    return clean


def _live(kube: Kube) -> dict:
    return json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)


def _env(predictor: dict) -> dict[str, dict]:
    (container,) = [c for c in predictor["containers"] if c["name"] == "kserve-container"]
    return {e["name"]: e for e in container["env"]}


def _records(store: str, version: str) -> list[dict]:
    reg = Registry(open_store(store), "spam")
    return [json.loads(reg.store.get(k).data) for k in sorted(reg.store.list(f"spam/{version}/rollouts/"))]


def _reasons(kube: Kube) -> list[str]:
    items = json.loads(
        kube.kubectl(
            "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=spam", "-o", "json"
        ).stdout
    )["items"]
    items.sort(key=lambda e: e["metadata"]["name"])
    return [e["reason"] for e in items if e["source"].get("component") == "spamops-rollout"]


def test_render_isvc_shadow_is_the_chart_value_with_the_store_credentials(clean: Kube, store, cli):
    path, older, production = store
    out = cli("render", "isvc", "--shadow", older, "--store", path)
    assert out.code == 0, out.err
    doc = yaml.safe_load(out.out)
    env = _env(doc["spec"]["predictor"])
    assert env["STORAGE_URI"]["value"] == f"{BUCKET}/spam/{production}/"
    assert env["SHADOW_STORAGE_URI"]["value"] == f"{BUCKET}/spam/{older}/"
    assert S3_ENV <= set(env) and env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "spamops-s3"
    assert doc["metadata"]["annotations"]["rollout.spamops.io/shadow-version"] == older
    clean.apply([d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount")])
    accepted = clean.kubectl("apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-", input=out.out)
    assert "SHADOW_STORAGE_URI" in set(_env(json.loads(accepted.stdout)["spec"]["predictor"]))
    plain = yaml.safe_load(cli("render", "isvc", "--store", path).out)
    assert "SHADOW_STORAGE_URI" not in _env(plain["spec"]["predictor"])  # no shadow unless asked for
    same = cli("render", "isvc", "--shadow", production, "--store", path)
    assert same.code == 2 and "is the one serving" in same.err


def test_rollout_shadow_adds_then_removes_exactly_the_shadow_env(isvc: Kube, store, cli):
    path, older, _ = store
    kc = ("--store", path, "--kubeconfig", isvc.kubeconfig)
    before = _live(isvc)["spec"]["predictor"]

    started = cli("rollout", "shadow", older, "-o", "json", *kc)

    assert started.code == 0, started.err
    assert started.json()["shadow_version"] == older and started.json()["primary_version"] == "bootstrap"
    live = _live(isvc)
    env = _env(live["spec"]["predictor"])
    assert env["SHADOW_STORAGE_URI"]["value"] == f"{BUCKET}/spam/{older}/"
    assert S3_ENV <= set(env)
    assert env["STORAGE_URI"] == _env(before)["STORAGE_URI"]  # the primary is untouched
    assert live["metadata"]["annotations"]["rollout.spamops.io/shadow-version"] == older

    shown = cli("rollout", "shadow", "-o", "json", *kc)  # no VERSION: what is shadowing now
    assert shown.code == 0 and (shown.json()["shadow_version"], shown.json()["stopped"]) == (older, False)
    shadow_id = live["metadata"]["annotations"]["rollout.spamops.io/shadow-id"]
    canary = cli("rollout", "start", older, *kc)  # a canary may start while shadowing (it copies the predictor)
    assert canary.code == 0, canary.err
    refused = cli("rollout", "shadow", older, *kc)
    assert refused.code == 2 and "a canary of" in refused.err
    assert cli("rollout", "abort", *kc).code == 0

    stopped = cli("rollout", "shadow", "--stop", "--reason", "enough data", *kc)

    assert stopped.code == 0, stopped.err
    after = _live(isvc)
    assert set(_env(after["spec"]["predictor"])) == set(_env(before))  # exactly what was there before
    assert "rollout.spamops.io/shadow-version" not in after["metadata"]["annotations"]
    assert [r for r in _reasons(isvc) if r.startswith("Shadow")] == ["ShadowStarted", "ShadowStopped"]
    records = [r for r in _records(path, older) if r["rollout_id"] == shadow_id]  # start and stop: one record
    assert [r["action"] for r in records] == ["shadow-started", "shadow-stopped"]
    assert records[1]["reason"] == "enough data"
    again = cli("rollout", "shadow", "--stop", *kc)
    assert again.code == 2 and "no shadow to stop" in again.err


def test_rollout_shadow_duration_removes_the_shadow_even_without_a_report(isvc: Kube, store, cli):
    path, older, _ = store
    nobody = f"http://127.0.0.1:{free_port()}"
    kc = ("--store", path, "--kubeconfig", isvc.kubeconfig)

    run = cli("rollout", "shadow", older, "--duration", 1, "--prometheus", nobody, *kc)

    assert run.code != 0 and f"Prometheus {nobody} is unreachable" in run.err
    assert "SHADOW_STORAGE_URI" not in _env(_live(isvc)["spec"]["predictor"])
    stopped = [r for r in _records(path, older) if r["action"] == "shadow-stopped"][-1]  # the latest
    assert "no report" in stopped["reason"] and nobody in stopped["reason"]


def test_rollout_auto_shadow_phase_without_a_verdict_aborts_before_any_traffic(isvc: Kube, store, cli, tmp_path):
    path, older, _ = store
    nobody = f"http://127.0.0.1:{free_port()}"  # no Prometheus: never enough compared instances
    config = tmp_path / "rollout.yaml"
    analysis = {"interval": 1, "shadow_phase": True, "shadow_deadline": 2}
    config.write_text(yaml.safe_dump({"store": path, "rollout": {"prometheus_url": nobody, "analysis": analysis}}))
    kc = ("--config", config, "--kubeconfig", isvc.kubeconfig)

    once = cli("rollout", "auto", older, "--once", *kc)
    assert once.code == 2 and "shadow_phase needs the continuous loop" in once.err

    auto = cli("rollout", "auto", older, "-o", "json", *kc)

    assert auto.code == 1, auto.err
    events = [json.loads(line) for line in auto.out.splitlines()]
    assert events[0]["event"] == "ShadowStarted" and events[-1]["event"] == "ShadowStopped"
    assert "inconclusive after shadow_deadline 2s" in events[-1]["message"] and nobody in events[-1]["message"]
    assert "CanaryStarted" not in {e["event"] for e in events}
    live = _live(isvc)["spec"]["predictor"]
    assert "SHADOW_STORAGE_URI" not in _env(live) and "canaryTrafficPercent" not in live
