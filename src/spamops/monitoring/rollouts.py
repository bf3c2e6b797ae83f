"""Rollout decisions as metrics, read back from the store's rollout records.

``spamops rollout auto`` runs to completion in a CI job or a shell: Prometheus
cannot scrape it, and an abort seen only as a Kubernetes Event expires after an
hour.  Its decisions are already written to the store, create-only, one object
per decision (:mod:`spamops.deploy.record`), and the key names the action.  The
monitor, which runs anyway, lists those keys each pass and exports
``spamops_rollout_decisions_total{model_version, action}``: the count can only
grow, so it is a counter, and a restarted monitor resumes at the same values.

Every version in the store gets a series for every action from its first
pass, at 0 until that decision happens.  Prometheus computes no increase for a
series that appears already at 1, so without this the first abort of a new
version - the one that matters - would never fire ``SpamopsCanaryAborted``.
"""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from spamops.records import CARD_FILE, RolloutAction

ACTIONS: tuple[str, ...] = typing.get_args(RolloutAction)
ROLLOUTS_DIR = "rollouts"


def count_decisions(keys: Iterable[str], model_name: str) -> tuple[set[str], Counter]:
    """(versions, Counter of (version, action)) from the store keys under ``<model_name>/``.

    A rollout entry is ``<model>/<version>/rollouts/<rollout>/<seq>-<action>.json``; a version
    is any ``<model>/<version>/model-card.json``.  Other keys are not looked at.
    """
    versions: set[str] = set()
    decisions: Counter = Counter()
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == model_name and parts[2] == CARD_FILE:
            versions.add(parts[1])
        elif len(parts) == 5 and parts[0] == model_name and parts[2] == ROLLOUTS_DIR and parts[4].endswith(".json"):
            seq, _, action = parts[4].removesuffix(".json").partition("-")
            if seq.isdigit() and action in ACTIONS:
                decisions[(parts[1], action)] += 1
    return versions, decisions


class RolloutCollector(Collector):
    """The decision counts of the last successful :meth:`refresh` (the store may be away meanwhile)."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.versions: set[str] = set()
        self.decisions: Counter = Counter()
        self.failures = 0

    def refresh(self) -> None:
        """List the model's keys once and recount; raises the store's SpamopsError when it is unreachable."""
        keys = self.registry.store.list(self.registry.model_name + "/")
        self.versions, self.decisions = count_decisions(keys, self.registry.model_name)

    def collect(self) -> Iterable[CounterMetricFamily]:
        total = CounterMetricFamily(
            "spamops_rollout_decisions",
            "Rollout decisions recorded in the store (started, advanced, held, aborted, promoted, ...).",
            labels=["model_version", "action"],
        )
        for version in sorted(self.versions | {v for v, _ in self.decisions}):
            for action in ACTIONS:
                total.add_metric([version, action], self.decisions.get((version, action), 0))
        yield total
        failed = CounterMetricFamily(
            "spamops_monitor_failed_rollout_passes", "Passes that could not list the store's rollout records."
        )
        failed.add_metric([], self.failures)
        yield failed
