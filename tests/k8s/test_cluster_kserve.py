"""The chart against the real KServe controller: what KServe creates, reports and refuses for our objects.

Runs on the session's test cluster (spamops_dev.cluster): kube-controller-manager,
kube-scheduler, KWOK's fake nodes and the KServe v0.20.0 manager with its
webhooks. Every status read here is written by the controller that owns it;
the one stand-in is Knative's (knative_standin.py) for the Serverless test.
"""

from __future__ import annotations

import json

import pytest
from k8shelpers import CHART, NAMESPACE, Kube, wait_until
from knative_standin import KnativeStandIn, ksvc

ISVC = "inferenceservices.serving.kserve.io"
MODEL = "spam"
BOOTSTRAP = "s3://spamops/models/spam/bootstrap/"
PROMOTED = "s3://spamops/models/spam/spam_model_20251119_063257/"
KNATIVE_NS = "spamops-knative"
SLOW = 120  # seconds: reconcile loops on a loaded 2-core machine


def get(kube: Kube, kind: str, name: str, ns: str) -> dict | None:
    res = kube.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def condition(obj: dict | None, kind: str) -> dict:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return {}


def env_of(pod_spec: dict, name: str = "STORAGE_URI") -> str | None:
    (container,) = [c for c in pod_spec["containers"] if c["name"] == "kserve-container"]
    return {e["name"]: e.get("value") for e in container.get("env", [])}.get(name)


def patch_isvc(kube: Kube, ns: str, patch: dict, check: bool = True):
    """A JSON merge patch, as spamops.deploy.cluster sends it (strategic merge does not work on custom resources)."""
    return kube.kubectl(
        "patch", ISVC, MODEL, "-n", ns, "--type=merge", "--field-manager=spamops-rollout", "-p", json.dumps(patch),
        check=check,
    )  # fmt: skip


def predictor_containers(kube: Kube, ns: str, storage_uri: str) -> list[dict]:
    """The live kserve-container with another STORAGE_URI (what a promotion changes)."""
    (container,) = get(kube, ISVC, MODEL, ns)["spec"]["predictor"]["containers"]
    container["env"] = [{"name": "STORAGE_URI", "value": storage_uri}]
    return [container]


def rolled_out(kube: Kube, name: str, ns: str) -> dict | None:
    """The Deployment once the Deployment controller has rolled out its newest template on KWOK's pods."""
    d = get(kube, "deployment", name, ns)
    s = (d or {}).get("status", {})
    done = (
        d is not None
        and s.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and s.get("updatedReplicas") == s.get("replicas") == s.get("readyReplicas") == d["spec"]["replicas"]
        and not s.get("unavailableReplicas")
    )
    return d if done else None


@pytest.fixture(scope="module")
def standard(cluster_kube: Kube) -> Kube:
    """The chart installed by helm in Standard mode into the chart's namespace."""
    k = cluster_kube
    k.reset()
    k.helm("uninstall", "spamops", "-n", NAMESPACE, "--ignore-not-found")
    k.helm(
        "install", "spamops", str(CHART), "--namespace", NAMESPACE, "--set", "namespace.create=false",
        "--set", "predictor.deploymentMode=Standard",
    )  # fmt: skip
    yield k
    k.helm("uninstall", "spamops", "-n", NAMESPACE, "--wait", "--timeout=120s", check=False)


def test_standard_mode_kserve_creates_an_owned_deployment_and_reports_ready(standard: Kube):
    deployment = wait_until(lambda: rolled_out(standard, f"{MODEL}-predictor", NAMESPACE), timeout=SLOW)
    assert deployment, "KServe never created a rolled-out Deployment spam-predictor"
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("InferenceService", MODEL, True)
    assert env_of(deployment["spec"]["template"]["spec"]) == BOOTSTRAP
    service = get(standard, "service", f"{MODEL}-predictor", NAMESPACE)
    assert service and service["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    ready = wait_until(lambda: condition(get(standard, ISVC, MODEL, NAMESPACE), "Ready").get("status") == "True", SLOW)
    isvc = get(standard, ISVC, MODEL, NAMESPACE)
    assert ready, json.dumps(isvc.get("status"), indent=1)
    # The pods behind it run on KWOK's fake nodes, scheduled by kube-scheduler.
    pods = json.loads(
        standard.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"serving.kserve.io/inferenceservice={MODEL}",
                         "-o", "json").stdout
    )["items"]  # fmt: skip
    assert pods and all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)


def test_a_new_storage_uri_makes_kserve_roll_the_deployment(standard: Kube):
    name = f"{MODEL}-predictor"
    before = wait_until(lambda: rolled_out(standard, name, NAMESPACE), timeout=SLOW)
    assert before
    patch_isvc(
        standard,
        NAMESPACE,
        {"spec": {"predictor": {"containers": predictor_containers(standard, NAMESPACE, PROMOTED)}}},
    )

    def new_template_rolled_out():
        d = rolled_out(standard, name, NAMESPACE)
        return d if d and env_of(d["spec"]["template"]["spec"]) == PROMOTED else None

    after = wait_until(new_template_rolled_out, timeout=SLOW)
    assert after, "KServe did not roll the Deployment to the new STORAGE_URI"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    sets = json.loads(standard.kubectl("get", "replicasets", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    mine = [rs for rs in sets if rs["metadata"]["ownerReferences"][0]["name"] == name]
    by_uri = {env_of(rs["spec"]["template"]["spec"]): rs["status"].get("replicas", 0) for rs in mine}
    assert by_uri[PROMOTED] >= 1 and by_uri.get(BOOTSTRAP) == 0, by_uri


def test_a_canary_entry_gets_its_own_deployment_and_status_from_kserve(standard: Kube):
    canary = {"predictor": {"name": "c1", "containers": predictor_containers(standard, NAMESPACE, PROMOTED)},
              "trafficPercent": 10}  # fmt: skip
    patch_isvc(standard, NAMESPACE, {"spec": {"canary": [canary]}})
    deployment = wait_until(lambda: rolled_out(standard, f"{MODEL}-c1-predictor", NAMESPACE), timeout=SLOW)
    assert deployment, "no canary Deployment spam-c1-predictor"
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"

    def canary_ready():
        isvc = get(standard, ISVC, MODEL, NAMESPACE)
        return isvc if condition(isvc, "CanaryPredictorReady").get("status") == "True" else None

    isvc = wait_until(canary_ready, timeout=SLOW)
    assert isvc, "CanaryPredictorReady never became True"
    assert [(s["name"], s["trafficPercent"], s["ready"]) for s in isvc["status"]["canaryStatuses"]] == [
        ("c1", 10, True)
    ]


def test_kserve_refuses_canaries_over_100_percent_in_sum(standard: Kube):
    containers = predictor_containers(standard, NAMESPACE, PROMOTED)
    canaries = [
        {"predictor": {"name": "c1", "containers": containers}, "trafficPercent": 60},
        {"predictor": {"name": "c2", "containers": containers}, "trafficPercent": 50},
    ]
    res = patch_isvc(standard, NAMESPACE, {"spec": {"canary": canaries}}, check=False)
    assert res.returncode != 0
    assert "admission webhook" in res.stderr and "must be <= 100" in res.stderr, res.stderr


def test_kserve_refuses_a_canary_in_serverless_mode(cluster_kube: Kube):
    """spec.canary[] is Standard-mode only: KServe's webhook says so for the default (Serverless) chart."""
    (isvc,) = [d for d in cluster_kube.helm_template() if d["kind"] == "InferenceService"]
    isvc["metadata"]["name"] = "canary-refused"
    isvc["spec"]["canary"] = [{"predictor": {"name": "c1", "containers": isvc["spec"]["predictor"]["containers"]},
                               "trafficPercent": 10}]  # fmt: skip
    res = cluster_kube.apply([isvc], dry_run=True, check=False)
    assert res.returncode != 0 and "canary is only supported in Standard deployment mode" in res.stderr, res.stderr


def test_a_job_created_from_the_cronjob_runs_its_pod_on_a_kwok_node(standard: Kube):
    """What a retraining trigger does: a Job from the chart's CronJob; the Job controller makes the pod."""
    (cronjob,) = standard.kubectl("get", "cronjobs", "-n", NAMESPACE, "-o", "name").stdout.split()
    standard.kubectl("create", "job", "retrain-now", f"--from={cronjob}", "-n", NAMESPACE)

    def pod():
        out = standard.kubectl("get", "pods", "-n", NAMESPACE, "-l", "job-name=retrain-now", "-o", "json").stdout
        items = json.loads(out)["items"]
        return items[0] if items and items[0]["spec"].get("nodeName") else None

    p = wait_until(pod, timeout=SLOW)
    assert p, "the Job controller created no scheduled pod"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert p["spec"]["nodeName"].startswith("kwok-node-")
    assert p["spec"]["serviceAccountName"] == "spamops-trainer"


# ------------------------------------------------------------------ Serverless
@pytest.fixture(scope="module")
def serverless(cluster_kube: Kube) -> Kube:
    """The chart in its default (Serverless) mode, in a namespace of its own (the mode of an InferenceService is fixed)."""
    k = cluster_kube
    k.helm(
        "install", "spamops", str(CHART), "--namespace", KNATIVE_NS, "--create-namespace",
        "--set", f"namespace.name={KNATIVE_NS}", "--set", "namespace.create=false",
        "--set", "admissionPolicy.enabled=false",
    )  # fmt: skip
    yield k
    k.helm("uninstall", "spamops", "-n", KNATIVE_NS, check=False)


def test_serverless_kserve_creates_the_knative_service_and_reports_its_traffic_split(serverless: Kube):
    name = f"{MODEL}-predictor"
    knative = KnativeStandIn(serverless)
    service = wait_until(lambda: ksvc(serverless, name, KNATIVE_NS), timeout=SLOW)
    assert service, "KServe created no Knative Service"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    assert env_of(service["spec"]["template"]["spec"]) == BOOTSTRAP
    first = knative.reconcile(name, KNATIVE_NS)["latestReadyRevisionName"]

    def rolled_out_revision():
        isvc = get(serverless, ISVC, MODEL, KNATIVE_NS)
        return (isvc or {}).get("status", {}).get("components", {}).get("predictor", {}).get("latestRolledoutRevision")

    assert wait_until(rolled_out_revision, timeout=SLOW) == first

    # A promotion as the pipeline sends it: the new version at 10 %.
    patch = {
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 10,
                "containers": predictor_containers(serverless, KNATIVE_NS, PROMOTED),
            }
        }
    }
    patch_isvc(serverless, KNATIVE_NS, patch)

    def split_by_kserve():
        s = ksvc(serverless, name, KNATIVE_NS)
        return s if s and env_of(s["spec"]["template"]["spec"]) == PROMOTED and s["spec"].get("traffic") else None

    service = wait_until(split_by_kserve, timeout=SLOW)
    assert service, "KServe did not update the Knative Service for the canary"
    # The split itself is KServe's: the new revision at 10 %, the rolled-out one at 90 %.
    by_kserve = sorted(
        (t.get("revisionName", "latest"), t["percent"], t.get("tag")) for t in service["spec"]["traffic"]
    )
    assert by_kserve == sorted([(first, 90, "prev"), ("latest", 10, "latest")])
    second = knative.reconcile(name, KNATIVE_NS)["latestReadyRevisionName"]
    assert second != first

    def traffic():
        isvc = get(serverless, ISVC, MODEL, KNATIVE_NS)
        t = (isvc or {}).get("status", {}).get("components", {}).get("predictor", {}).get("traffic") or []
        return t if len(t) == 2 else None

    split = wait_until(traffic, timeout=SLOW)
    assert split, "KServe never reported the split"
    assert sorted((t["revisionName"], t["percent"], t.get("tag"), t.get("latestRevision")) for t in split) == sorted(
        [(first, 90, "prev", False), (second, 10, "latest", True)]
    )
    predictor = get(serverless, ISVC, MODEL, KNATIVE_NS)["status"]["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == first  # rolled out advances only at 100 %
    assert predictor["latestCreatedRevision"] == second
