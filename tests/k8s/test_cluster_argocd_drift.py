"""What KServe's webhooks change in the chart's InferenceService: the drift Argo CD would see.

kserve/kserve#2232: Argo CD reports an InferenceService OutOfSync because
KServe's mutating webhook rewrites fields of the applied spec. Here the chart's
InferenceService goes through the real webhook (test cluster) in both
deployment modes and what is stored is compared, field by field, with what was
rendered. A field the webhook *changes* would be drift on every sync; one it
only *adds* is not (neither Argo CD's three-way diff nor its server-side diff
counts fields that git never set). The Application's ignoreDifferences must
hold exactly the fields the pipeline patches plus those the webhook changes.
"""

from __future__ import annotations

import json

import pytest
import yaml
from k8shelpers import MANIFESTS, NAMESPACE, Kube

ISVC = "inferenceservices.serving.kserve.io"
# What KServe v0.20.0's webhook changes in the chart's InferenceService, per mode (docs/kubernetes.md).
WEBHOOK_CHANGES: dict[str, set[str]] = {"Serverless": set(), "Standard": set()}
# What the training pipeline patches after a promotion (spamops.deploy.cluster).
PIPELINE_FIELDS = [
    ".spec.predictor.canaryTrafficPercent",
    '.spec.predictor.containers[] | select(.name == "kserve-container") | .env[] | select(.name == "STORAGE_URI")',
]


def leaves(obj, path: str = "") -> dict[str, object]:
    """Flatten to {".a.b[0].c": value}; list items of named objects are addressed by name."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(leaves(v, f"{path}.{k}" if "/" not in k and "." not in k else f'{path}["{k}"]'))
        return out or {path: {}}
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            key = f'[name="{v["name"]}"]' if isinstance(v, dict) and "name" in v else f"[{i}]"
            out.update(leaves(v, path + key))
        return out or {path: []}
    return {path: obj}


def webhook_effect(kube: Kube, mode: str, annotation: str | None = None) -> tuple[set[str], set[str]]:
    """(changed, added) leaf paths of metadata.labels/annotations and spec after the real webhook."""
    (isvc,) = [
        d
        for d in kube.helm_template(extra=("--set", f"predictor.deploymentMode={mode}"))
        if d["kind"] == "InferenceService"
    ]
    isvc["metadata"]["name"] = f"drift-{mode.lower()}"
    if annotation:
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = annotation
    kube.apply([isvc], manager="argocd-controller")
    try:
        live = json.loads(kube.kubectl("get", ISVC, isvc["metadata"]["name"], "-n", NAMESPACE, "-o", "json").stdout)
    finally:
        kube.kubectl("delete", ISVC, isvc["metadata"]["name"], "-n", NAMESPACE, "--wait=false")

    def watched(o: dict) -> dict[str, object]:
        md = o["metadata"]
        return leaves({"metadata": {"labels": md.get("labels", {}), "annotations": md.get("annotations", {})},
                       "spec": o["spec"]})  # fmt: skip

    want, got = watched(isvc), watched(live)
    changed = {p for p, v in want.items() if p in got and got[p] != v and str(got[p]) != str(v)}
    changed |= {p for p in want if p not in got}  # removed counts as changed
    return changed, set(got) - set(want)


@pytest.mark.parametrize("mode", ["Serverless", "Standard"])
def test_the_webhook_changes_nothing_the_chart_sets(cluster_kube: Kube, mode: str):
    changed, added = webhook_effect(cluster_kube, mode)
    assert changed == WEBHOOK_CHANGES[mode], f"KServe's webhook changed {sorted(changed)} (added {sorted(added)})"


def test_the_webhook_rewrites_the_legacy_serverless_annotation(cluster_kube: Kube):
    """Why the chart writes "Knative" for deploymentMode Serverless: the legacy value would be drift."""
    changed, _ = webhook_effect(cluster_kube, "Serverless", annotation="Serverless")
    assert changed == {'.metadata.annotations["serving.kserve.io/deploymentMode"]'}


def test_argocd_ignores_exactly_the_pipelines_fields_and_the_webhooks_changes():
    app = yaml.safe_load((MANIFESTS / "argocd" / "application.yaml").read_text())
    (rule,) = [r for r in app["spec"]["ignoreDifferences"] if r["kind"] == "InferenceService"]
    webhook = sorted(set().union(*WEBHOOK_CHANGES.values()))
    assert rule["jqPathExpressions"] == PIPELINE_FIELDS + webhook
