"""GitOps write-back: a rollout step is a git commit to the values file Argo CD renders, not a patch.

The file is chart values from the same renderer as everything else
(:func:`spamops.deploy.render.chart_values`), so what git holds renders to what
a direct rollout would have applied.  Commit messages follow
argocd-image-updater's convention (``build: automatic update of <app>`` then
detail lines).  After each commit (and optional push) the rollout waits until
the cluster shows the commit applied - the live STORAGE_URI and weight equal
the committed ones - before analysing.  Abort = one revert commit of every
commit since the canary started, so the stable version always lives in git.

Only Serverless mode: the chart has no ``spec.canary[]`` values yet.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from spamops.deploy import traffic
from spamops.deploy.render import chart_values
from spamops.errors import BadInputError, SpamopsError


class GitOps:
    """One git work tree and the values file in it."""

    def __init__(self, repo: Path, values_file: str, app: str, *, push: bool = False) -> None:
        self.repo = Path(repo)
        self.values = self.repo / values_file
        self.app = app
        self.push = push
        if not (self.repo / ".git").exists():
            raise BadInputError(f"--gitops {self.repo}: not a git work tree")

    def git(self, *args: str) -> str:
        res = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise SpamopsError(
                f"git {' '.join(args)} in {self.repo}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
            )
        return res.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def read(self) -> dict[str, Any]:
        return yaml.safe_load(self.values.read_text()) or {} if self.values.exists() else {}

    def commit(self, uri: str, percent: int | None, details: list[str]) -> str:
        """Write the values for ``uri``/``percent``, commit (and push); the new commit's sha."""
        doc = self.read()
        doc.setdefault("predictor", {}).update(chart_values(uri, percent)["predictor"])
        self.values.parent.mkdir(parents=True, exist_ok=True)
        self.values.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.git("add", str(self.values.relative_to(self.repo)))
        self._commit(details)
        return self.head()

    def revert_since(self, base: str, details: list[str]) -> str:
        """One commit undoing every commit after ``base`` (the canary's start)."""
        self.git("revert", "--no-commit", f"{base}..HEAD")
        self._commit(details)
        return self.head()

    def _commit(self, details: list[str]) -> None:
        message = "\n".join([f"build: automatic update of {self.app}", "", *details])
        self.git("-c", "user.name=spamops", "-c", "user.email=spamops@localhost", "commit", "-q", "-m", message)
        if self.push:
            self.git("push", "-q")


class GitOpsBackend:
    """The Serverless backend's reads; its writes become commits, then waits for the cluster."""

    mode = "serverless"

    def __init__(
        self,
        inner: traffic.Serverless | traffic.Standard,
        gitops: GitOps,
        *,
        timeout: float,
        poll: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(inner, traffic.Serverless):  # mode "standard"
            raise BadInputError("--gitops: Standard mode is not supported yet (the chart has no spec.canary[] values)")
        self.inner, self.gitops = inner, gitops
        self.cluster = inner.cluster
        self.timeout, self.poll, self.sleep = timeout, poll, sleep

    def split(self, isvc: dict[str, Any]) -> traffic.Split:
        return self.inner.split(isvc)

    def follow(self, isvc: dict[str, Any]) -> bool:
        return self.inner.follow(isvc)

    def _annotate(self, notes: dict[str, Any]) -> None:
        self.cluster.update(lambda _: {"metadata": {"annotations": notes}}, "recorded the rollout state")

    def _wait(self, uri: str, percent: int | None, commit: str) -> traffic.Split:
        """Until the live object carries the committed STORAGE_URI and weight (Argo CD synced it)."""
        deadline = time.monotonic() + self.timeout
        while True:
            isvc = self.cluster.read_isvc()
            predictor = isvc["spec"]["predictor"]
            if (
                traffic.storage_uri(predictor, self.inner.where) == uri
                and predictor.get("canaryTrafficPercent") == percent
            ):
                return self.split(isvc)
            if time.monotonic() > deadline:
                raise SpamopsError(
                    f"{self.inner.where}: commit {commit[:12]} not applied within {self.timeout:.0f}s "
                    f"(live STORAGE_URI/canaryTrafficPercent differ); check the Argo CD Application's sync"
                )
            self.sleep(self.poll)

    def _details(self, state: dict[str, Any], line: str) -> list[str]:
        return [
            line,
            f"step {state.get('step')}, weight {state.get('weight')}%, verdict {state.get('verdict')}",
            f"rollout {state.get('id')}",
        ]

    def start(self, uri: str, percent: int, state: dict[str, Any]) -> traffic.Split:
        isvc = self.cluster.read_isvc()
        live = self.split(isvc)
        # Which revision is stable, as the direct Serverless start records it: the canary's readiness
        # is then still told apart at 100 %, when KServe marks the canary's revision rolled out.
        # In place, so the caller's copy of the state carries both on.
        state.update(gitops_base=self.gitops.head(), stable_revision=traffic.rolled_out_revision(isvc))
        gate = state.get("gate") or "gate: unknown"
        commit = self.gitops.commit(
            uri,
            percent,
            [
                f"updates model {self.gitops.app} version '{live.stable_version}' to '{traffic.version_of(uri)}'",
                gate,
                *self._details(state, "canary started")[1:],
            ],
        )
        self._annotate({**traffic.annotations_patch(live.stable_uri, uri, state), traffic.PREFIX + "commit": commit})
        return self._wait(uri, percent, commit)

    def _canary_uri(self, live: traffic.Split, what: str) -> str:
        """The live canary's URI; refused as the direct backend refuses it when there is none."""
        if live.canary_uri is None:
            raise BadInputError(f"{self.inner.where}: no canary in progress; {what}")
        return live.canary_uri

    def set_weight(self, percent: int, state: dict[str, Any]) -> traffic.Split:
        live = self.split(self.cluster.read_isvc())
        uri = self._canary_uri(live, "start one with 'spamops rollout start'")
        commit = self.gitops.commit(uri, percent, self._details(state, f"canary {live.canary_version} to {percent}%"))
        self._annotate({traffic.STATE: json.dumps(state, sort_keys=True), traffic.PREFIX + "commit": commit})
        return self._wait(uri, percent, commit)

    def promote(self, state: dict[str, Any]) -> traffic.Split:
        live = self.split(self.cluster.read_isvc())
        uri = self._canary_uri(live, "nothing to promote")
        commit = self.gitops.commit(uri, None, self._details(state, f"promote {live.canary_version}"))
        self._annotate({**traffic.annotations_patch(uri, None, state), traffic.PREFIX + "commit": commit})
        return self._wait(uri, None, commit)

    def abort(self, state: dict[str, Any]) -> traffic.Split:
        live = self.split(self.cluster.read_isvc())
        base = state.get("gitops_base")
        if not base:
            raise BadInputError(
                f"{self.inner.where}: this canary was not started through --gitops; abort it without --gitops"
            )
        commit = self.gitops.revert_since(
            base, self._details(state, f"revert canary {live.canary_version}: {state.get('reason', 'aborted')}")
        )
        stable = self.gitops.read().get("predictor", {})
        if not stable.get("storageUri"):
            raise BadInputError(
                f"{self.gitops.values}: holds no stable predictor.storageUri after the revert; "
                "commit the stable version's values before the first GitOps rollout"
            )
        self._annotate({**traffic.annotations_patch(None, None, state), traffic.PREFIX + "commit": commit})
        return self._wait(stable.get("storageUri"), stable.get("canaryTrafficPercent"), commit)
