"""The chart as a Helm release: install, upgrade and uninstall with the real helm
client against the real API server (no controllers run, so nothing waits for
pods; `helm test` is not run for the same reason)."""

from __future__ import annotations

import json

from k8shelpers import CHART, NAMESPACE, Kube

RELEASE = ("--namespace", NAMESPACE, "--set", "namespace.create=false")
BOOTSTRAP = "s3://spamops/models/spam/bootstrap/"
PROMOTED = "s3://spamops/models/spam/spam_model_20251119_063257/"


def trainer_jobs(kube: Kube) -> list[str]:
    out = kube.kubectl("get", "jobs", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=trainer", "-o", "name")
    return sorted(out.stdout.split())


def isvc(kube: Kube) -> dict:
    return json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)


def isvc_image(kube: Kube) -> str:
    return isvc(kube)["spec"]["predictor"]["containers"][0]["image"]


def isvc_model(kube: Kube) -> tuple[str, int | None]:
    """(STORAGE_URI, canaryTrafficPercent) of the live InferenceService."""
    pred = isvc(kube)["spec"]["predictor"]
    env = {e["name"]: e.get("value") for e in pred["containers"][0].get("env", [])}
    return env["STORAGE_URI"], pred.get("canaryTrafficPercent")


def promote_like_the_pipeline(kube: Kube, storage_uri: str, percent: int) -> None:
    """What spamops.deploy.traffic.Serverless.start sends: a JSON merge patch with every container."""
    container = isvc(kube)["spec"]["predictor"]["containers"][0]
    container["env"] = [{"name": "STORAGE_URI", "value": storage_uri}]
    patch = {"spec": {"predictor": {"canaryTrafficPercent": percent, "containers": [container]}}}
    kube.kubectl(
        "patch",
        "inferenceservice",
        "spam",
        "-n",
        NAMESPACE,
        "--type=merge",
        "--field-manager=spamops-rollout",
        "-p",
        json.dumps(patch),
    )


def test_install_upgrade_with_a_new_image_and_uninstall(clean: Kube):
    installed = clean.helm("install", "spamops", str(CHART), *RELEASE)
    status = json.loads(clean.helm("status", "spamops", "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    first = trainer_jobs(clean)
    assert len(first) == 1 and isvc_image(clean) == "spamops/predictor:0.1.0"
    assert isvc_model(clean) == (BOOTSTRAP, None)
    # NOTES.txt names the Job that was actually created (its name has a hash).
    assert f"batch.kubernetes.io/job-name={first[0].split('/', 1)[1]}" in installed.stdout

    # The pipeline promotes a model and starts a canary on the live object.
    promote_like_the_pipeline(clean, PROMOTED, 10)

    # A new image changes the Job's immutable pod template: the upgrade must
    # still succeed (the one-off Job is replaced by one with a new name). The
    # documented upgrade (--reuse-values --set image.tag=...) must keep the
    # pipeline's model and canary: Helm merge-patches the containers list whole.
    clean.helm("upgrade", "spamops", str(CHART), *RELEASE, "--reuse-values", "--set", "image.tag=0.2.0")
    second = trainer_jobs(clean)
    assert len(second) == 1 and second != first
    assert isvc_image(clean) == "spamops/predictor:0.2.0"
    assert isvc_model(clean) == (PROMOTED, 10)

    # keepLiveModel=false forces the values onto the live service.
    clean.helm("upgrade", "spamops", str(CHART), *RELEASE, "--reuse-values", "--set", "predictor.keepLiveModel=false")
    assert isvc_model(clean) == (BOOTSTRAP, None)

    clean.helm("uninstall", "spamops", "-n", NAMESPACE)
    gone = clean.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_install_into_an_existing_namespace_needs_namespace_create_false(clean: Kube):
    """The chart's Namespace (with its Pod Security labels) is for kubectl/Argo
    CD; a Helm release into an existing namespace must not try to own it."""
    res = clean.helm("install", "spamops", str(CHART), "--namespace", NAMESPACE, check=False)
    assert res.returncode != 0 and "Namespace" in res.stderr
