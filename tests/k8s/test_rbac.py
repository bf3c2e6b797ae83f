"""RBAC as the real API server evaluates it (--authorization-mode=RBAC).

The trainer's ServiceAccount runs rollouts and may do exactly that - get and
patch the one InferenceService, create Events, take its rollout Lease, get and
patch the one Standard-mode HTTPRoute - and nothing else (not even list or
watch, nor another InferenceService, Lease or route); the predictor's may do
nothing at all. Each check runs twice: against the API server alone and on
the test cluster with the controllers and KServe running.
"""

from __future__ import annotations

import json

import pytest
from k8shelpers import NAMESPACE, Kube

TRAINER = f"system:serviceaccount:{NAMESPACE}:spamops-trainer"
PREDICTOR = f"system:serviceaccount:{NAMESPACE}:spamops-predictor"
NOBODY = f"system:serviceaccount:{NAMESPACE}:no-bindings-at-all"
ISVC = "inferenceservices.serving.kserve.io"
SPAM = f"{ISVC}/spam"  # the chart's InferenceService (resourceNames in the Role)
LEASES = "leases.coordination.k8s.io"
LEASE = f"{LEASES}/spamops-rollout-spam"
ROUTES = "httproutes.gateway.networking.k8s.io"
ROUTE = f"{ROUTES}/spam-spamops-canary"

# (who, verb, resource, namespace or "*" for all namespaces, extra args, allowed)
TABLE = [
    (TRAINER, "get", SPAM, NAMESPACE, (), True),
    (TRAINER, "patch", SPAM, NAMESPACE, (), True),
    (TRAINER, "list", ISVC, NAMESPACE, (), False),
    (TRAINER, "watch", ISVC, NAMESPACE, (), False),
    (TRAINER, "watch", SPAM, NAMESPACE, (), False),
    (TRAINER, "get", f"{ISVC}/other", NAMESPACE, (), False),
    (TRAINER, "patch", f"{ISVC}/other", NAMESPACE, (), False),
    (TRAINER, "create", ISVC, NAMESPACE, (), False),
    (TRAINER, "update", SPAM, NAMESPACE, (), False),
    (TRAINER, "delete", SPAM, NAMESPACE, (), False),
    (TRAINER, "patch", SPAM, NAMESPACE, ("--subresource=status",), False),
    (TRAINER, "patch", SPAM, "default", (), False),
    (TRAINER, "list", ISVC, "*", (), False),
    (TRAINER, "create", "events", NAMESPACE, (), True),
    (TRAINER, "create", "events", "default", (), False),
    (TRAINER, "delete", "events", NAMESPACE, (), False),
    (TRAINER, "create", LEASES, NAMESPACE, (), True),
    (TRAINER, "get", LEASE, NAMESPACE, (), True),
    (TRAINER, "update", LEASE, NAMESPACE, (), True),
    (TRAINER, "get", f"{LEASES}/kube-scheduler", NAMESPACE, (), False),
    (TRAINER, "update", f"{LEASES}/other", NAMESPACE, (), False),
    (TRAINER, "delete", LEASE, NAMESPACE, (), False),
    (TRAINER, "update", LEASE, "kube-system", (), False),
    (TRAINER, "get", ROUTE, NAMESPACE, (), True),
    (TRAINER, "patch", ROUTE, NAMESPACE, (), True),
    (TRAINER, "patch", f"{ROUTES}/other", NAMESPACE, (), False),
    (TRAINER, "delete", ROUTE, NAMESPACE, (), False),
    (TRAINER, "list", ROUTES, NAMESPACE, (), False),
    (TRAINER, "get", "secrets", NAMESPACE, (), False),
    (TRAINER, "list", "secrets", NAMESPACE, (), False),
    (TRAINER, "delete", "secrets", NAMESPACE, (), False),
    (TRAINER, "list", "secrets", "*", (), False),
    (TRAINER, "create", "pods", NAMESPACE, (), False),
    (TRAINER, "create", "pods", "default", (), False),
    (TRAINER, "create", "pods", "kube-system", (), False),
    (TRAINER, "get", "pods", NAMESPACE, (), False),
    (TRAINER, "create", "pods/exec", NAMESPACE, (), False),
    (TRAINER, "get", "configmaps", NAMESPACE, (), False),
    (TRAINER, "create", "jobs.batch", NAMESPACE, (), False),
    (TRAINER, "patch", "cronjobs.batch", NAMESPACE, (), False),
    (TRAINER, "create", "serviceaccounts/token", NAMESPACE, (), False),
    (TRAINER, "patch", "roles.rbac.authorization.k8s.io", NAMESPACE, (), False),
    (TRAINER, "create", "rolebindings.rbac.authorization.k8s.io", NAMESPACE, (), False),
    (TRAINER, "impersonate", "serviceaccounts", NAMESPACE, (), False),
    (TRAINER, "delete", "namespaces", "*", (), False),
    (PREDICTOR, "get", ISVC, NAMESPACE, (), False),
    (PREDICTOR, "get", "secrets", NAMESPACE, (), False),
    (PREDICTOR, "list", "pods", NAMESPACE, (), False),
    (PREDICTOR, "get", "configmaps", NAMESPACE, (), False),
]


def _short(resource: str) -> str:
    """inferenceservices.serving.kserve.io/spam -> inferenceservices/spam"""
    kind, slash, name = resource.partition("/")
    return kind.split(".")[0] + slash + name


@pytest.fixture(
    scope="module",
    params=["kube", pytest.param("cluster_kube", marks=pytest.mark.cluster)],
    ids=["apiserver", "with-controllers"],
)
def rbac(request: pytest.FixtureRequest) -> Kube:
    """The chart applied to the API server alone, then to the cluster where KServe
    and the kube controllers run (and act on the same objects): the answers must not change."""
    kube: Kube = request.getfixturevalue(request.param)
    kube.reset()
    kube.apply(kube.helm_template())
    return kube


def can_i(kube: Kube, who: str, verb: str, resource: str, ns: str, extra=()) -> bool:
    scope = ["--all-namespaces"] if ns == "*" else ["-n", ns]
    res = kube.kubectl("auth", "can-i", verb, resource, *scope, *extra, f"--as={who}", check=False)
    answer = res.stdout.strip()
    assert answer in ("yes", "no"), res.stdout + res.stderr
    return answer == "yes"


@pytest.mark.parametrize(
    "who, verb, resource, ns, extra, allowed",
    TABLE,
    ids=[f"{w.rsplit(':', 1)[1]}-{v}-{_short(r)}{''.join(e)}-{n}" for w, v, r, n, e, _ in TABLE],
)
def test_rbac_table(rbac: Kube, who, verb, resource, ns, extra, allowed):
    assert can_i(rbac, who, verb, resource, ns, extra) is allowed


def _rules(kube: Kube, who: str) -> set[tuple]:
    """SelfSubjectRulesReview as `who` (what `kubectl auth can-i --list` shows)."""
    review = json.dumps(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": NAMESPACE}}
    )
    out = kube.kubectl("create", "--validate=false", "-f", "-", "-o", "json", f"--as={who}", input=review)
    status = json.loads(out.stdout)["status"]
    assert not status.get("incomplete"), status
    rules = set()
    for r in status.get("resourceRules", []):
        for g in r.get("apiGroups") or [""]:
            for res in r.get("resources", []):
                rules.add((g, res, tuple(sorted(r.get("resourceNames") or [])), tuple(sorted(r.get("verbs", [])))))
    return rules


def test_trainer_has_nothing_beyond_the_inferenceservice_rule(rbac: Kube):
    """Compared with a ServiceAccount that has no bindings (which still gets the
    API server's defaults for every authenticated user), the trainer has one
    extra rules - the InferenceService, Events, its Lease, its HTTPRoute - and the
    predictor none."""
    baseline = _rules(rbac, NOBODY)
    assert _rules(rbac, TRAINER) - baseline == {
        ("serving.kserve.io", "inferenceservices", ("spam",), ("get", "patch")),
        ("", "events", (), ("create",)),
        ("coordination.k8s.io", "leases", (), ("create",)),
        ("coordination.k8s.io", "leases", ("spamops-rollout-spam",), ("get", "update")),
        ("gateway.networking.k8s.io", "httproutes", ("spam-spamops-canary",), ("get", "patch")),
    }
    assert _rules(rbac, PREDICTOR) - baseline == set()


def test_trainer_can_roll_out_a_model_and_cannot_read_secrets(rbac: Kube):
    """What the pipeline does after promoting, done as the trainer: a JSON merge
    patch of canaryTrafficPercent on the InferenceService."""
    res = rbac.kubectl(
        "patch",
        ISVC,
        "spam",
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        '{"spec":{"predictor":{"canaryTrafficPercent":10}}}',
        f"--as={TRAINER}",
    )
    assert "patched" in res.stdout
    live = json.loads(rbac.kubectl("get", ISVC, "spam", "-n", NAMESPACE, "-o", "json").stdout)
    assert live["spec"]["predictor"]["canaryTrafficPercent"] == 10
    denied = rbac.kubectl("get", "secrets", "-n", NAMESPACE, f"--as={TRAINER}", check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    denied = rbac.kubectl("delete", ISVC, "spam", "-n", NAMESPACE, f"--as={TRAINER}", "--dry-run=server", check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
