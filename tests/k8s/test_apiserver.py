"""Everything we ship is accepted by a real kube-apiserver, and broken objects are not.

Against the envtest control plane (built-in schemas, KServe/Argo CD CRD
structural schemas, admission incl. ValidatingAdmissionPolicy, strict field
validation): server-side dry-run of every object of each deployment flavour,
then a real server-side apply and a read-back of what was stored.
"""

from __future__ import annotations

import base64
import copy

import pytest
from k8shelpers import CHART, MANIFESTS, NAMESPACE, Kube, load_docs, obj_key, psa_warning, wait_until

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
ARGOCD = MANIFESTS / "argocd"


def flavours() -> list[tuple[str, str, object]]:
    out = [
        ("kustomize-dev", "kustomize", MANIFESTS / "overlays" / "dev"),
        ("kustomize-prod", "kustomize", MANIFESTS / "overlays" / "prod"),
        ("helm-default", "helm", None),
    ]
    out += [(f"helm-{p.stem}", "helm", p) for p in CI_VALUES]
    out += [("argocd-application", "kustomize", ARGOCD)]
    return out


FLAVOURS = flavours()


def render(kube: Kube, how: str, arg) -> list[dict]:
    if how == "kustomize":
        return kube.kustomize(arg)
    return kube.helm_template(*([arg] if arg else []))


def assert_all_accepted(kube: Kube, docs: list[dict], *, dry_run: bool) -> None:
    res = kube.apply(docs, dry_run=dry_run)
    applied = [line for line in res.stdout.splitlines() if "serverside-applied" in line]
    assert len(applied) == len(docs), res.stdout
    # PodSecurity (the namespace warns on "restricted"), deprecations, unknown
    # fields dropped by a lenient path: none of them may show up.
    warnings = [line for line in res.stderr.splitlines() if line.startswith("Warning")]
    assert not warnings, "\n".join(warnings)


@pytest.mark.parametrize("name, how, arg", FLAVOURS, ids=[f[0] for f in FLAVOURS])
def test_every_object_is_accepted_by_server_side_dry_run(kube: Kube, name, how, arg):
    docs = render(kube, how, arg)
    assert docs
    assert_all_accepted(kube, docs, dry_run=True)


def _live_view(expected, live, path: str, diffs: list[str]) -> None:
    """Every field we set must be stored as we set it (defaults may be added)."""
    if isinstance(expected, dict):
        if not isinstance(live, dict):
            diffs.append(f"{path}: expected a mapping, got {live!r}")
            return
        for k, v in expected.items():
            if k not in live:
                diffs.append(f"{path}.{k}: missing from the stored object")
                continue
            _live_view(v, live[k], f"{path}.{k}", diffs)
    elif isinstance(expected, list):
        if not isinstance(live, list) or len(live) != len(expected):
            diffs.append(f"{path}: expected {expected!r}, got {live!r}")
            return
        for i, (e, lv) in enumerate(zip(expected, live, strict=True)):
            _live_view(e, lv, f"{path}[{i}]", diffs)
    elif expected != live and str(expected) != str(live):
        diffs.append(f"{path}: expected {expected!r}, stored {live!r}")


def assert_stored_as_rendered(kube: Kube, docs: list[dict]) -> None:
    diffs: list[str] = []
    for doc in docs:
        expected = copy.deepcopy(doc)
        live = kube.get(doc)
        if doc["kind"] == "Secret" and "stringData" in expected:
            sd = expected.pop("stringData")
            expected.setdefault("data", {}).update({k: base64.b64encode(v.encode()).decode() for k, v in sd.items()})
        _live_view(expected, live, "/".join(obj_key(doc)[1:]), diffs)
        # The API server may record other managers too (and in any order).
        managers = [m["manager"] for m in live["metadata"]["managedFields"]]
        assert any(m == "spamops-tests" for m in managers), (obj_key(doc), managers)
    assert not diffs, "\n".join(diffs)


@pytest.mark.parametrize("name, how, arg", FLAVOURS, ids=[f[0] for f in FLAVOURS])
def test_every_object_is_applied_for_real_and_read_back(clean: Kube, name, how, arg):
    docs = render(clean, how, arg)
    assert_all_accepted(clean, docs, dry_run=False)
    assert_stored_as_rendered(clean, docs)
    # Re-applying the same objects is a no-op: nothing the server defaults or
    # converts (stringData, quantities, ...) makes them drift.
    versions = {obj_key(d): clean.get(d)["metadata"]["resourceVersion"] for d in docs}
    clean.apply(docs)
    assert versions == {obj_key(d): clean.get(d)["metadata"]["resourceVersion"] for d in docs}


# ------------------------------------------------------------ broken objects
def _isvc(kube: Kube, **predictor) -> dict:
    (isvc,) = [d for d in kube.helm_template() if d["kind"] == "InferenceService"]
    isvc["spec"]["predictor"].update(predictor)
    return isvc


@pytest.fixture
def guarded(clean: Kube) -> Kube:
    """The default chart applied for real, admission policy included."""
    clean.apply(clean.helm_template())
    return clean


def _rejected(kube: Kube, doc: dict):
    res = kube.apply([doc], dry_run=True, check=False)
    return res if res.returncode != 0 else None


def test_canary_traffic_over_100_percent_is_rejected(guarded: Kube):
    bad = _isvc(guarded, canaryTrafficPercent=150)
    # A new policy binding takes effect within about a second.
    res = wait_until(lambda: _rejected(guarded, bad), timeout=20)
    assert res, "an InferenceService with canaryTrafficPercent: 150 was accepted"
    assert "canaryTrafficPercent must be between 0 and 100" in res.stderr
    assert _rejected(guarded, _isvc(guarded, canaryTrafficPercent=-1))
    for ok in (0, 10, 100):
        assert not _rejected(guarded, _isvc(guarded, canaryTrafficPercent=ok)), ok


def test_predictor_container_must_be_named_kserve_container(guarded: Kube):
    isvc = _isvc(guarded)
    isvc["spec"]["predictor"]["containers"][0]["name"] = "predictor"
    res = wait_until(lambda: _rejected(guarded, isvc), timeout=20)
    assert res and "kserve-container" in res.stderr


def test_the_crd_schema_alone_does_not_bound_canary_traffic(guarded: Kube):
    """Why the admission policy exists: outside the namespace it guards, the
    KServe CRD accepts 150 % (KServe 0.16 neither bounds it in the schema nor
    in its webhook; only Knative would fail later)."""
    guarded.ensure_namespace("unguarded")
    isvc = _isvc(guarded, canaryTrafficPercent=150)
    isvc["metadata"]["namespace"] = "unguarded"
    assert guarded.apply([isvc], dry_run=True, check=False).returncode == 0


def _job(kube: Kube) -> dict:
    (job,) = [
        d
        for d in kube.helm_template()
        if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"
    ]
    return job


def test_job_with_an_unknown_field_is_rejected(kube: Kube):
    job = _job(kube)
    assert kube.apply([job], dry_run=True, check=False).returncode == 0  # control
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    res = kube.apply([job], dry_run=True, check=False)
    assert res.returncode != 0
    # Server-side apply builds a typed object from the schema: strictly.
    assert "imagePullPolicyy: field not declared in schema" in res.stderr


def test_inferenceservice_with_an_unknown_field_is_rejected(kube: Kube):
    isvc = _isvc(kube)
    isvc["spec"]["predictor"]["canaryTraficPercent"] = 10
    res = kube.apply([isvc], dry_run=True, check=False)
    assert res.returncode != 0
    assert "canaryTraficPercent" in res.stderr


def test_pod_failure_policy_needs_restart_policy_never(kube: Kube):
    job = _job(kube)
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    res = kube.apply([job], dry_run=True, check=False)
    assert res.returncode != 0 and "restartPolicy" in res.stderr


def test_application_without_destination_is_rejected(kube: Kube):
    (app,) = [d for d in kube.kustomize(ARGOCD) if d["kind"] == "Application"]
    del app["spec"]["destination"]
    res = kube.apply([app], dry_run=True, check=False)
    assert res.returncode != 0 and "destination" in res.stderr


def test_namespaced_objects_all_land_in_the_spamops_namespace(kube: Kube):
    for name, how, arg in FLAVOURS:
        if name == "argocd-application":
            continue
        for d in render(kube, how, arg):
            ns = d["metadata"].get("namespace")
            cluster_scoped = d["kind"] in {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
            assert (ns is None) == cluster_scoped, (name, obj_key(d))
            assert cluster_scoped or ns == NAMESPACE, (name, obj_key(d))


def test_harness_reads_what_it_applies(clean: Kube):
    """The read-back check itself can fail: a stored object that differs from
    the rendered one is reported."""
    docs = load_docs("""
apiVersion: v1
kind: ConfigMap
metadata: {name: readback-probe, namespace: spamops}
data: {a: "1"}
""")
    clean.apply(docs)
    docs[0]["data"]["a"] = "2"
    with pytest.raises(AssertionError, match="readback-probe.data.a"):
        assert_stored_as_rendered(clean, docs)


def test_pod_security_warnings_would_be_caught(kube: Kube):
    """The no-warnings check can fail: a pod template that breaks the
    namespace's "restricted" warn level draws a PodSecurity warning."""
    warning = psa_warning(kube)
    assert 'would violate PodSecurity "restricted:latest"' in warning
