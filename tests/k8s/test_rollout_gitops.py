"""GitOps write-back: each rollout step is a commit to the chart values file; abort is a revert commit.

A temporary git repository with a bare remote holds the values file Argo CD's
Application would render (the chart + ``values-rollout.yaml``).  Argo CD's sync
is played by :class:`argosync.ArgoSync` (a stand-in: for each new commit on the
remote it renders the chart with that commit's values and applies the
InferenceService server-side, the render-and-apply tests/k8s/test_argocd.py
proves equivalent to Argo CD's).  The test then checks every commit's message and that rendering each
commit yields exactly the weight recorded for it.
"""

from __future__ import annotations

import json

import pytest
import yaml
from argosync import ArgoSync, git, init_repo
from k8shelpers import CHART, NAMESPACE, Kube, train_versions

BUCKET = "s3://spamops/models"
APP = "spamops"


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> tuple[str, str, str]:
    """(store, production, newer): cards name the S3 location (see test_rollout_standard.py for why)."""
    tmp = tmp_path_factory.mktemp("gitops-store")
    store, (production,) = train_versions(tmp, (42,))
    _, (newer,) = train_versions(tmp, (3,), "--no-promote")
    for path in store.rglob("*.json"):
        path.write_text(path.read_text().replace(f"file://{store}", BUCKET))
    return str(store), production, newer


@pytest.fixture
def gitops(clean: Kube, versions, tmp_path):
    store, production, _ = versions
    clean.kubectl("delete", "-n", NAMESPACE, "leases.coordination.k8s.io,events", "--all", "--ignore-not-found")
    clean.apply([d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount")])
    stable = {
        "predictor": {
            "storageUri": f"{BUCKET}/spam/{production}/",
            "canaryTrafficPercent": None,
            "keepLiveModel": False,
        }
    }
    remote, repo = init_repo(tmp_path, stable)
    sync = ArgoSync(clean, remote, tmp_path)
    sync.start()
    assert sync.wait_synced(), f"the initial commit was never synced: {sync.error}"
    yield clean, repo, remote, sync
    sync.__exit__()


def _isvc(kube: Kube) -> dict:
    return json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)


def _uri(isvc: dict) -> str:
    (container,) = isvc["spec"]["predictor"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"]


def test_gitops_start_and_abort_are_commits_and_a_revert(gitops, versions, cli):
    kube, repo, remote, sync = gitops
    store, production, newer = versions
    base = git(remote, "rev-parse", "HEAD")
    args = ("--store", store, "--kubeconfig", kube.kubeconfig, "--gitops", repo, "--push")

    started = cli("rollout", "start", newer, "--percent", 10, *args)

    assert started.code == 0, started.err
    assert _isvc(kube)["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert _uri(_isvc(kube)) == f"{BUCKET}/spam/{newer}/"
    start_commit = git(remote, "rev-parse", "HEAD")
    message = git(remote, "log", "-1", "--format=%B", start_commit).splitlines()
    assert message[0] == f"build: automatic update of {APP}"
    assert message[2] == f"updates model {APP} version '{production}' to '{newer}'"
    assert message[3].startswith("gate: passed (")
    assert "weight 10%, verdict started" in message[4]
    assert _isvc(kube)["metadata"]["annotations"]["rollout.spamops.io/commit"] == start_commit

    aborted = cli("rollout", "abort", "--reason", "spam rate", *args)

    assert aborted.code == 0, aborted.err
    revert = git(remote, "rev-parse", "HEAD")
    assert git(remote, "log", "--format=%s", f"{base}..HEAD").splitlines() == [f"build: automatic update of {APP}"] * 2
    assert f"revert canary {newer}: spam rate" in git(remote, "log", "-1", "--format=%B", revert)
    assert git(remote, "diff", base, revert) == ""  # the revert restores git's stable version exactly
    assert _uri(_isvc(kube)) == f"{BUCKET}/spam/{production}/"
    assert "canaryTrafficPercent" not in _isvc(kube)["spec"]["predictor"]
    # each commit, rendered, gave exactly the weight recorded for it
    assert sync.applied[start_commit] == 10 and sync.applied[revert] is None
    for commit, percent in sync.applied.items():
        assert sync.render(commit)["spec"]["predictor"].get("canaryTrafficPercent") == percent


def test_gitops_promote_commits_the_canary_as_the_new_stable(gitops, versions, cli):
    kube, repo, remote, sync = gitops
    store, _, newer = versions
    args = ("--store", store, "--kubeconfig", kube.kubeconfig, "--gitops", repo, "--push")
    assert cli("rollout", "start", newer, "--percent", 25, *args).code == 0

    promoted = cli("rollout", "promote", *args)

    assert promoted.code == 0, promoted.err
    values = yaml.safe_load(git(remote, "show", "HEAD:values-rollout.yaml"))
    assert values["predictor"]["storageUri"] == f"{BUCKET}/spam/{newer}/"
    assert values["predictor"]["canaryTrafficPercent"] is None
    assert "canaryTrafficPercent" not in _isvc(kube)["spec"]["predictor"]
    assert f"promote {newer}" in git(remote, "log", "-1", "--format=%B")
    assert CHART.is_dir()
