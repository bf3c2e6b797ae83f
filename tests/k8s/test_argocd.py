"""Argo CD reconciliation proxy: GitOps steady state against the real API server.

No Argo CD controller runs here. The test does what its sync does with this
Application: render the source the way Argo CD would (kustomize build of
spec.source.path, or helm template with its value files), set the tracking
annotation, leave hooks out of the sync set, and server-side apply wave by
wave with Argo CD's field manager. A second render+apply must change nothing:
otherwise self-heal would fight the cluster forever (OutOfSync loops).
"""

from __future__ import annotations

import copy
import re
import subprocess
from types import SimpleNamespace

import pytest
import yaml
from k8shelpers import HOOK, MANIFESTS, NAMESPACE, REPO, Kube, load_docs, sync_wave, token_kubeconfig

APP_DIR = MANIFESTS / "argocd"
MANAGER = "argocd-controller"
CLUSTER_SCOPED = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def app_and_project() -> tuple[dict, dict]:
    docs = {
        d["kind"]: d
        for d in load_docs(
            (APP_DIR / "application.yaml").read_text() + "\n---\n" + (APP_DIR / "appproject.yaml").read_text()
        )
    }
    return docs["Application"], docs["AppProject"]


def render_as_argocd(kube: Kube, app: dict) -> tuple[list[dict], list[dict]]:
    """(sync resources in apply order, hooks) for the Application's source."""
    src, dest = app["spec"]["source"], app["spec"]["destination"]
    path = REPO / src["path"]
    if (path / "Chart.yaml").is_file():
        helm = src.get("helm", {})
        args = [
            "template",
            helm.get("releaseName", app["metadata"]["name"]),
            str(path),
            "--namespace",
            dest["namespace"],
            "--kube-version",
            kube.server_version(),
        ]
        for vf in helm.get("valueFiles", []):
            args += ["-f", str(path / vf)]
        docs = load_docs(kube.helm(*args).stdout)
    elif (path / "kustomization.yaml").is_file():
        docs = kube.kustomize(path)
    else:
        docs = [d for f in sorted(path.glob("*.yaml")) for d in load_docs(f.read_text())]
    sync, hooks = [], []
    for d in docs:
        md = d["metadata"]
        if d["kind"] not in CLUSTER_SCOPED:
            md.setdefault("namespace", dest["namespace"])
        ann = md.setdefault("annotations", {})
        if HOOK in ann or "helm.sh/hook" in ann:
            hooks.append(d)
            continue
        group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
        ann["argocd.argoproj.io/tracking-id"] = (
            f"{app['metadata']['name']}:{group}/{d['kind']}:{md.get('namespace', '')}/{md['name']}"
        )
        sync.append(d)
    sync.sort(key=sync_wave)  # stable: within a wave, rendering order
    return sync, hooks


def argocd_sync(kube: Kube, sync: list[dict]) -> None:
    for wave in sorted({sync_wave(d) for d in sync}):
        kube.apply([d for d in sync if sync_wave(d) == wave], manager=MANAGER)


def resource_versions(kube: Kube, docs: list[dict]) -> dict[tuple, str]:
    return {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): kube.get(d)["metadata"]["resourceVersion"]
        for d in docs
    }


@pytest.fixture
def synced(clean: Kube):
    app, _ = app_and_project()
    sync, hooks = render_as_argocd(clean, app)
    argocd_sync(clean, sync)
    return clean, app, sync, hooks


def test_application_is_automated_server_side_with_prune_and_self_heal():
    app, _ = app_and_project()
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in policy["syncOptions"]
    assert "RespectIgnoreDifferences=true" in policy["syncOptions"]
    assert (REPO / app["spec"]["source"]["path"]).is_dir()
    assert app["spec"]["destination"]["namespace"] == "spamops"


def test_second_sync_changes_nothing(synced):
    kube, app, sync, _ = synced
    assert sync, "nothing to sync"
    before = resource_versions(kube, sync)
    again, _ = render_as_argocd(kube, app)
    assert yaml.safe_dump_all(again) == yaml.safe_dump_all(sync), "rendering is not deterministic"
    argocd_sync(kube, again)
    after = resource_versions(kube, again)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"a second sync modified objects: {changed}"
    # And the server agrees there is nothing to apply (exit 0 = no differences).
    diff = kube.kubectl(
        "diff", "--server-side", f"--field-manager={MANAGER}", "-f", "-", input=yaml.safe_dump_all(again), check=False
    )
    assert diff.returncode == 0, diff.stdout + diff.stderr


def test_steady_state_check_detects_drift(synced):
    """The no-op check can fail: after an out-of-band change the next sync
    modifies the object and `kubectl diff` reports it."""
    kube, app, sync, _ = synced
    kube.kubectl(
        "patch",
        "cronjob",
        "spamops-retrain",
        "-n",
        "spamops",
        "--type=merge",
        "-p",
        '{"spec":{"schedule":"0 0 * * *"}}',
    )
    diff = kube.kubectl(
        "diff",
        "--server-side",
        f"--field-manager={MANAGER}",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all(sync),
        check=False,
    )
    assert diff.returncode == 1 and "schedule" in diff.stdout


def test_sync_waves_put_prerequisites_first(synced):
    _, _, sync, hooks = synced
    order = [(d["kind"], d["metadata"]["name"]) for d in sync]
    isvc = order.index(("InferenceService", "spam"))
    for prereq in [
        ("Namespace", "spamops"),
        ("ServiceAccount", "spamops-predictor"),
        ("Role", "spamops-trainer"),
        ("RoleBinding", "spamops-trainer"),
        ("ConfigMap", "spamops-training-config"),
    ]:
        assert order.index(prereq) < isvc, prereq
    # Argo CD applies a wave only once the previous ones are healthy, and the
    # InferenceService is healthy only after the first training run: the
    # CronJob that trains must be in the same wave, not behind it.
    (isvc_doc,) = [d for d in sync if d["kind"] == "InferenceService"]
    (cron_doc,) = [d for d in sync if d["kind"] == "CronJob"]
    assert sync_wave(cron_doc) == sync_wave(isvc_doc)
    assert [(h["kind"], h["metadata"]["name"]) for h in hooks] == [("Job", "spamops-smoke-test")]
    assert hooks[0]["metadata"]["annotations"][HOOK] == "PostSync"


def test_app_project_permits_every_synced_object(synced):
    """Argo CD refuses to sync a kind or destination its AppProject does not allow."""
    _, app, sync, hooks = synced
    _, project = app_and_project()
    spec = project["spec"]
    assert app["spec"]["project"] == project["metadata"]["name"]
    assert app["spec"]["source"]["repoURL"] in spec["sourceRepos"]
    assert {
        "server": app["spec"]["destination"]["server"],
        "namespace": app["spec"]["destination"]["namespace"],
    } in spec["destinations"]
    cluster = {(w["group"], w["kind"]) for w in spec["clusterResourceWhitelist"]}
    namespaced = {(w["group"], w["kind"]) for w in spec["namespaceResourceWhitelist"]}
    for d in sync + hooks:
        group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
        allowed = cluster if d["kind"] in CLUSTER_SCOPED else namespaced
        assert (group, d["kind"]) in allowed, (group, d["kind"])


def test_ignore_differences_cover_what_the_pipeline_patches(synced):
    """Self-heal must not undo a rollout: the fields the trainer patches
    (STORAGE_URI of kserve-container, canaryTrafficPercent) are ignored."""
    _, app, sync, _ = synced
    (isvc,) = [d for d in sync if d["kind"] == "InferenceService"]
    (rule,) = app["spec"]["ignoreDifferences"]
    assert (rule["group"], rule["kind"], rule["name"], rule["namespace"]) == (
        "serving.kserve.io",
        "InferenceService",
        isvc["metadata"]["name"],
        isvc["metadata"]["namespace"],
    )
    paths = rule["jqPathExpressions"]
    assert ".spec.predictor.canaryTrafficPercent" in paths
    assert any('select(.name == "kserve-container")' in p and 'select(.name == "STORAGE_URI")' in p for p in paths)
    (c,) = isvc["spec"]["predictor"]["containers"]
    assert c["name"] == "kserve-container" and c["env"][0]["name"] == "STORAGE_URI"


def test_application_and_project_apply_for_real(clean: Kube):
    docs = clean.kustomize(APP_DIR)
    res = clean.apply(docs)
    assert res.stdout.count("serverside-applied") == 2
    app = clean.get([d for d in docs if d["kind"] == "Application"][0])
    assert app["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
    assert app["spec"]["source"]["path"] == "manifests/overlays/prod"


def test_kustomize_build_is_what_argocd_would_run():
    """Argo CD runs `kustomize build`; kubectl's embedded kustomize must agree
    with the committed tree (no load restrictor or plugin surprises): the
    restricted build is the one the other tests sync, and it is the committed
    base minus what the prod overlay removes, each object otherwise as in the
    base apart from the overlay's label and its InferenceService patch."""
    from spamops_dev.artifacts import ensure_artifacts

    kubectl = ensure_artifacts().kubectl
    prod = MANIFESTS / "overlays" / "prod"
    res = subprocess.run(
        [str(kubectl), "kustomize", "--load-restrictor=LoadRestrictionsRootOnly", str(prod)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    restricted = load_docs(res.stdout)
    unrestricted = load_docs(
        subprocess.run([str(kubectl), "kustomize", str(prod)], capture_output=True, text=True, check=True).stdout
    )
    assert restricted == unrestricted

    def key(d):
        return (d["kind"], d["metadata"]["name"])

    base = {key(d): d for d in load_docs((MANIFESTS / "base" / "spamops.yaml").read_text())}
    built = {key(d): d for d in restricted}
    removed = {k for k in base if k[0] == "Secret" or (k[0] == "Job" and k[1].startswith("spamops-train-"))}
    assert len(removed) == 2, removed
    assert set(built) == set(base) - removed
    for k, doc in built.items():
        expected = copy.deepcopy(base[k])
        expected["metadata"].setdefault("labels", {})["spamops.io/environment"] = "prod"
        if k[0] == "InferenceService":
            for op in yaml.safe_load((prod / "patch-inferenceservice.yaml").read_text()):
                assert op["op"] == "replace", op
                *parents, leaf = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
                _at(expected, parents)[leaf] = op["value"]
        assert doc == expected, k


# ------------------------------------------- RespectIgnoreDifferences=true
_FIELD = re.compile(r"\.([A-Za-z_][\w-]*)|(\[\])")
_SELECT = re.compile(r'select\(\.([A-Za-z_][\w-]*) == "([^"]*)"\)')


def _at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def jq_paths(doc: dict, expr: str) -> list[tuple]:
    """Paths selected by the jq subset used in ignoreDifferences: `.a.b`,
    `[]` and `select(.key == "value")` stages joined by `|`."""
    paths: list[tuple] = [()]
    for stage in (part.strip() for part in expr.split("|")):
        sel = _SELECT.fullmatch(stage)
        if sel:
            key, value = sel.groups()
            paths = [p for p in paths if isinstance(_at(doc, p), dict) and _at(doc, p).get(key) == value]
            continue
        if "".join(m.group(0) for m in _FIELD.finditer(stage)) != stage:
            raise ValueError(f"jq stage not understood by this emulation: {stage!r}")
        for m in _FIELD.finditer(stage):
            if m.group(1):
                paths = [
                    p + (m.group(1),) for p in paths if isinstance(_at(doc, p), dict) and m.group(1) in _at(doc, p)
                ]
            else:
                paths = [p + (i,) for p in paths if isinstance(_at(doc, p), list) for i in range(len(_at(doc, p)))]
    return paths


def respect_ignore_differences(app: dict, desired: dict, live: dict) -> dict:
    """What Argo CD does before applying with RespectIgnoreDifferences=true:
    the ignored fields take their live values."""
    out = copy.deepcopy(desired)
    group = desired["apiVersion"].split("/")[0] if "/" in desired["apiVersion"] else ""
    md = desired["metadata"]
    for rule in app["spec"].get("ignoreDifferences", []):
        if (rule.get("group", ""), rule["kind"]) != (group, desired["kind"]):
            continue
        if rule.get("name", md["name"]) != md["name"] or rule.get("namespace", md.get("namespace")) != md.get(
            "namespace"
        ):
            continue
        for expr in rule.get("jqPathExpressions", []):
            for path in reversed(jq_paths(out, expr)):
                del _at(out, path[:-1])[path[-1]]
            for path in jq_paths(live, expr):
                parent = out
                for i, p in enumerate(path[:-1]):
                    nxt = path[i + 1]
                    if isinstance(parent, dict):
                        parent = parent.setdefault(p, [] if isinstance(nxt, int) else {})
                    else:
                        parent = parent[p]
                leaf = path[-1]
                if isinstance(parent, list):
                    parent.insert(leaf, copy.deepcopy(_at(live, path)))
                else:
                    parent[leaf] = copy.deepcopy(_at(live, path))
    return out


def test_self_heal_keeps_the_pipelines_rollout(synced, tmp_path):
    """After the pipeline started a canary (as the trainer, through
    spamops.deploy), the next automated sync must neither fail nor roll the
    model back to the bootstrap version in git."""
    from spamops.config import RolloutConfig
    from spamops.deploy.cluster import Cluster, Target
    from spamops.deploy.rollout import Rollouts

    kube, app, sync, _ = synced
    version = "s3://spamops/models/spam/spam_model_20251119_063257/"
    target = Target(kubeconfig=str(token_kubeconfig(kube, "spamops-trainer", tmp_path / "kc")))
    rollouts = Rollouts(Cluster(target), RolloutConfig())
    rollouts.start(SimpleNamespace(version="spam_model_20251119_063257", storage_uri=version), 10)  # card-like

    desired, _ = render_as_argocd(kube, app)
    (isvc,) = [d for d in desired if d["kind"] == "InferenceService"]
    # Without the ignore rule, server-side apply of git's STORAGE_URI collides
    # with the field the pipeline now owns (and forcing it would undo the rollout).
    naive = kube.apply([isvc], manager=MANAGER, check=False)
    assert naive.returncode != 0 and "conflict" in naive.stderr.lower()

    live = kube.get(isvc)
    healed = [respect_ignore_differences(app, d, live) if d is isvc else d for d in desired]
    argocd_sync(kube, healed)
    state = rollouts.split()
    assert (state.canary_uri, state.canary_percent) == (version, 10)
    assert kube.get(isvc)["metadata"]["namespace"] == NAMESPACE


def test_jq_emulation_refuses_what_it_does_not_understand():
    with pytest.raises(ValueError):
        jq_paths({"a": 1}, ".a | to_entries")
    doc = {"c": [{"name": "x", "env": [{"name": "A"}, {"name": "B"}]}]}
    assert jq_paths(doc, '.c[] | select(.name == "x") | .env[] | select(.name == "B")') == [("c", 0, "env", 1)]
