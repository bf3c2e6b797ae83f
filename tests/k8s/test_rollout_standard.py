"""Standard (RawDeployment) mode: a ``spec.canary[]`` entry plus spamops' weighted Gateway API HTTPRoute.

Needs KServe >= 0.20's InferenceService CRD (``spec.canary``) and the Gateway
API standard-channel HTTPRoute CRD; the test control plane serves both.  The
InferenceService itself is rendered by ``spamops render isvc --mode standard``
from the chart, so the test also proves the renderer's output is accepted.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml
from k8shelpers import NAMESPACE, Kube

from spamops.cli import main
from spamops.deploy.traffic import dns_name

BUCKET = "s3://spamops/models"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, str, str]:
    """(store, production version, a newer version not promoted).

    Trained into a local store, then its cards and pointer name the versions'
    S3 location (``s3://spamops/models/spam/<version>/``) as a store synced to
    S3 would: the chart's schema accepts only URIs KServe's storage initializer
    can fetch, and no predictor runs in this control plane to fetch them.
    """
    tmp = tmp_path_factory.mktemp("standard-store")
    store = str(tmp / "store")
    versions = []
    for seed, extra in ((42, []), (3, ["--no-promote"])):
        config = tmp / f"seed-{seed}.yaml"
        config.write_text(yaml.safe_dump({"store": store, "train": {"seed": seed}}))
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["train", "--config", str(config), "--quiet", "--json", *extra]) == 0
        versions.append(json.loads(buffer.getvalue())["version"])
    for path in Path(store).rglob("*.json"):
        path.write_text(path.read_text().replace(f"file://{store}", BUCKET))
    return store, versions[0], versions[1]


@pytest.fixture
def rendered(kube: Kube, store, cli) -> Kube:
    kube.reset()
    kube.kubectl(
        "delete",
        "-n",
        NAMESPACE,
        "httproutes.gateway.networking.k8s.io,leases.coordination.k8s.io,events",
        "--all",
        "--ignore-not-found",
    )
    docs = [d for d in kube.helm_template() if d["kind"] in ("Namespace", "ServiceAccount")]
    kube.apply(docs)
    out = cli("render", "isvc", "--store", store[0], "--mode", "standard")
    assert out.code == 0, out.err
    kube.kubectl("apply", "--server-side", "--field-manager=spamops-tests", "-f", "-", input=out.out)
    return kube


def _get(kube: Kube, kind: str, name: str) -> dict:
    return json.loads(kube.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout)


def _uri(predictor: dict) -> str:
    (container,) = predictor["containers"]
    return {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"]


def _weights(kube: Kube) -> dict[str, int]:
    route = _get(kube, "httproutes.gateway.networking.k8s.io", "spam-spamops-canary")
    (rule,) = route["spec"]["rules"]
    return {b["name"]: b["weight"] for b in rule["backendRefs"]}


def test_render_isvc_standard_is_the_chart_with_the_mode_and_version(rendered: Kube, store):
    _, production, _ = store
    isvc = _get(rendered, "inferenceservice", "spam")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["metadata"]["labels"]["rollout.spamops.io/version"] == production
    assert _uri(isvc["spec"]["predictor"]) == f"{BUCKET}/spam/{production}/"
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


def test_render_isvc_canary_in_standard_mode_is_a_canary_entry(kube: Kube, store, cli):
    path, production, newer = store
    out = cli("render", "isvc", newer, "--canary", 10, "--store", path, "--mode", "standard")
    assert out.code == 0, out.err
    doc = yaml.safe_load(out.out)
    (entry,) = doc["spec"]["canary"]
    assert entry["trafficPercent"] == 10 and entry["predictor"]["name"] == dns_name(newer)
    assert _uri(doc["spec"]["predictor"]) == f"{BUCKET}/spam/{production}/"
    assert _uri(entry["predictor"]) == f"{BUCKET}/spam/{newer}/"
    accepted = kube.kubectl("apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-", input=out.out)
    assert json.loads(accepted.stdout)["spec"]["canary"][0]["trafficPercent"] == 10
    serverless = yaml.safe_load(cli("render", "isvc", newer, "--canary", 10, "--store", path).out)
    assert serverless["spec"]["predictor"]["canaryTrafficPercent"] == 10 and "canary" not in serverless["spec"]
    for switch in (["-o", "json"], ["--json"]):
        as_json = cli("render", "isvc", newer, "--canary", 10, "--store", path, "--mode", "standard", *switch)
        assert as_json.code == 0, as_json.err
        assert json.loads(as_json.out) == doc  # one document, the same object


def test_standard_canary_start_promote_and_abort_move_entry_and_route(rendered: Kube, store, cli):
    path, production, newer = store
    kc = ("--store", path, "--kubeconfig", rendered.kubeconfig)
    name = dns_name(newer)

    started = cli("rollout", "start", newer, "--percent", 10, *kc)
    assert started.code == 0, started.err
    isvc = _get(rendered, "inferenceservice", "spam")
    (entry,) = isvc["spec"]["canary"]
    assert (entry["predictor"]["name"], entry["trafficPercent"]) == (name, 10)
    # The canary's pods run as the stable's identity (its S3 credentials) with its security settings.
    for key in ("serviceAccountName", "securityContext"):
        assert entry["predictor"][key] == isvc["spec"]["predictor"][key], key
    assert _uri(entry["predictor"]) == f"{BUCKET}/spam/{newer}/"
    assert _uri(isvc["spec"]["predictor"]) == f"{BUCKET}/spam/{production}/"
    # No controller reports the canary Ready here: the route gives it no traffic yet (a gateway would 503 it).
    assert _weights(rendered) == {"spam-predictor": 100, f"spam-{name}-predictor": 0}
    status = cli("rollout", "status", "-o", "json", *kc).json()
    assert (status["mode"], status["canary_percent"], status["routed_canary_percent"]) == ("standard", 10, 0)

    promoted = cli("rollout", "promote", *kc)
    assert promoted.code == 0, promoted.err
    isvc = _get(rendered, "inferenceservice", "spam")
    assert "canary" not in isvc["spec"]
    assert isvc["spec"]["predictor"]["name"] == name  # KServe keeps the canary's Deployment: no restart
    assert _uri(isvc["spec"]["predictor"]) == f"{BUCKET}/spam/{newer}/"
    assert _weights(rendered) == {f"spam-{name}-predictor": 100}

    again = cli("rollout", "start", production, "--percent", 25, *kc)
    assert again.code == 0, again.err
    assert _weights(rendered) == {f"spam-{name}-predictor": 100, f"spam-{dns_name(production)}-predictor": 0}
    aborted = cli("rollout", "abort", "--reason", "test", *kc)
    assert aborted.code == 0, aborted.err
    assert "canary" not in _get(rendered, "inferenceservice", "spam")["spec"]
    assert _weights(rendered) == {f"spam-{name}-predictor": 100}
