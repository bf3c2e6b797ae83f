"""After `make pin`, every workload the manifests deploy names its image by digest, and the API server stores them so.

`make pin` rewrites a scratch copy of the chart values and the kustomize base from a
``pushed.json`` as `make push` writes it; tests/images/test_push_and_pin.py proves,
against a real registry, that those digests are the ones the registry returned and that
they pull the built images. Here the rendered overlays are applied to the test API server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from k8shelpers import CHART, MANIFESTS, REPO, Kube, controlplane

REGISTRY = "registry.example.com:5000/ml"


@pytest.fixture
def pinned(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(CHART.parent, checkout / "helm")
    shutil.copytree(MANIFESTS, checkout / "manifests")
    digests = {name: "sha256:" + hashlib.sha256(name.encode()).hexdigest() for name in ("trainer", "predictor")}
    out = tmp_path / "images"
    out.mkdir()
    pushed = {
        "registry": REGISTRY,
        "tag": "abc123def456",
        "images": {n: {"repository": f"{REGISTRY}/{n}", "digest": d, "id": d} for n, d in digests.items()},
    }
    (out / "pushed.json").write_text(json.dumps(pushed))
    env = {**os.environ, "HELM": str(controlplane.ensure_artifacts().helm)}
    subprocess.run(
        [sys.executable, str(REPO / "scripts/images/ship.py"), "--out", str(out), "pin", "--root", str(checkout)],
        env=env,
        check=True,
        capture_output=True,
    )
    return checkout, {n: f"{REGISTRY}/{n}@{d}" for n, d in digests.items()}


def workload_images(docs: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in docs:
        spec = doc.get("spec", {})
        pod = {
            "Job": lambda s: s["template"]["spec"],
            "CronJob": lambda s: s["jobTemplate"]["spec"]["template"]["spec"],
            "InferenceService": lambda s: s["predictor"],
        }.get(doc["kind"])
        if pod:
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = {c["image"] for c in pod(spec)["containers"]}
    return found


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_pinned_overlays_deploy_by_digest(clean: Kube, pinned, overlay):
    checkout, want = pinned
    docs = clean.kustomize(checkout / "manifests" / "overlays" / overlay)
    rendered = workload_images(docs)
    assert rendered["CronJob/spamops-retrain"] == {want["trainer"]}
    assert rendered["InferenceService/spam"] == {want["predictor"]}
    ours = [d for d in docs if workload_images([d]) and next(iter(workload_images([d]).values())) <= set(want.values())]
    assert len(ours) >= 2  # the CronJob and the InferenceService (and the one-off Job where kept)
    # The Namespace outlives `clean` (and other tests' field managers own its labels): apply the rest.
    clean.apply([d for d in docs if d["kind"] != "Namespace"])
    for doc in ours:
        (live,) = workload_images([clean.get(doc)]).values()
        assert all("@sha256:" in image for image in live) and live <= set(want.values()), live
