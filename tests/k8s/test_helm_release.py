"""The chart as a Helm release: install, upgrade and uninstall with the real helm
client against the real API server (no controllers run, so nothing waits for
pods; `helm test` is not run for the same reason)."""

from __future__ import annotations

import json

from k8shelpers import CHART, NAMESPACE, Kube

RELEASE = ("--namespace", NAMESPACE, "--set", "namespace.create=false")


def trainer_jobs(kube: Kube) -> list[str]:
    out = kube.kubectl("get", "jobs", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=trainer", "-o", "name")
    return sorted(out.stdout.split())


def isvc_image(kube: Kube) -> str:
    isvc = json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)
    return isvc["spec"]["predictor"]["containers"][0]["image"]


def test_install_upgrade_with_a_new_image_and_uninstall(clean: Kube):
    clean.helm("install", "spamops", str(CHART), *RELEASE)
    status = json.loads(clean.helm("status", "spamops", "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    first = trainer_jobs(clean)
    assert len(first) == 1 and isvc_image(clean) == "spamops/predictor:0.1.0"

    # A new image changes the Job's immutable pod template: the upgrade must
    # still succeed (the one-off Job is replaced by one with a new name).
    clean.helm("upgrade", "spamops", str(CHART), *RELEASE, "--set", "image.tag=0.2.0")
    second = trainer_jobs(clean)
    assert len(second) == 1 and second != first
    assert isvc_image(clean) == "spamops/predictor:0.2.0"

    clean.helm("uninstall", "spamops", "-n", NAMESPACE)
    gone = clean.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_install_into_an_existing_namespace_needs_namespace_create_false(clean: Kube):
    """The chart's Namespace (with its Pod Security labels) is for kubectl/Argo
    CD; a Helm release into an existing namespace must not try to own it."""
    res = clean.helm("install", "spamops", str(CHART), "--namespace", NAMESPACE, check=False)
    assert res.returncode != 0 and "Namespace" in res.stderr
