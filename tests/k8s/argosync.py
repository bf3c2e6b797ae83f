"""Argo CD's sync, played by a thread: render the chart at each new commit of a git remote and apply it.

Argo CD itself cannot run here (its controller needs a repo server, Redis and
an image). What it does for a Helm source is render the chart with the
commit's values file and apply the result server-side; tests/k8s/test_argocd.py
proves that render-and-apply equivalent to its sync. This thread does that for
the InferenceService only, which is the object a rollout changes.  It is a
stand-in, used by the GitOps tests (tests/k8s/test_rollout_gitops.py and the
GitOps scenarios of tests/k8s/test_cluster_rollout.py).
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import yaml
from k8shelpers import Kube, wait_until


def git(repo: Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return res.stdout.strip()


def init_repo(tmp: Path, values: dict, values_file: str = "values-rollout.yaml") -> tuple[Path, Path]:
    """A bare remote and a clone of it whose first commit holds ``values``: (remote, work tree)."""
    remote, repo = tmp / "remote.git", tmp / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(repo)], check=True, capture_output=True)
    (repo / values_file).write_text(yaml.safe_dump(values))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "stable")
    git(repo, "push", "-q", "-u", "origin", "main")
    return remote, repo


class ArgoSync(threading.Thread):
    """Renders the chart at each new remote commit and applies the InferenceService (Argo CD's part).

    ``applied`` maps each synced commit to the ``canaryTrafficPercent`` it rendered to.  ``force`` takes
    over fields another manager applied (Argo CD's ``ServerSideApply=true`` with ``--force-conflicts``),
    for an InferenceService that existed before Argo CD managed it.
    """

    def __init__(
        self, kube: Kube, remote: Path, work: Path, *, values_file: str = "values-rollout.yaml", force: bool = False
    ) -> None:
        super().__init__(daemon=True)
        self.kube, self.remote, self.work = kube, remote, work
        self.values_file, self.force = values_file, force
        self.applied: dict[str, int | None] = {}
        self.stop = threading.Event()
        self.synced = ""
        self.error = ""

    def render(self, commit: str) -> dict:
        values = self.work / "argo-values.yaml"
        values.write_text(git(self.remote, "show", f"{commit}:{self.values_file}"))
        (doc,) = self.kube.helm_template(values, extra=("-s", "templates/inferenceservice.yaml"))
        return doc

    def run(self) -> None:
        while not self.stop.wait(0.3):
            head = git(self.remote, "rev-parse", "HEAD")
            if head == self.synced:
                continue
            try:
                doc = self.render(head)
                self.kube.apply([doc], manager="argocd-controller", force=self.force)
            except AssertionError as exc:  # a failed sync is retried, as Argo CD retries; the test sees why
                self.error = str(exc)
                continue
            self.applied[head] = doc["spec"]["predictor"].get("canaryTrafficPercent")
            self.synced = head

    def wait_synced(self, timeout: float = 30) -> bool:
        head = git(self.remote, "rev-parse", "HEAD")
        return wait_until(lambda: self.synced == head, timeout=timeout)

    def __enter__(self) -> ArgoSync:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=10)
