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

from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from spamops import names
from spamops.registry.versions import ROLLOUT_ACTIONS, Registry

ACTIONS = ROLLOUT_ACTIONS


class RolloutCollector(Collector):
    """The decision counts of the last successful :meth:`refresh` (the store may be away meanwhile)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.versions: set[str] = set()
        self.decisions: Counter = Counter()
        self.failures = 0

    def refresh(self) -> None:
        """List the model's keys once and recount; raises the store's SpamopsError when it is unreachable."""
        self.versions, self.decisions = self.registry.rollout_decisions()

    def collect(self) -> Iterable[CounterMetricFamily]:
        total = CounterMetricFamily(
            names.ROLLOUT_DECISIONS_TOTAL,
            "Rollout decisions recorded in the store (started, advanced, held, aborted, promoted, ...).",
            labels=[names.LABEL_MODEL_VERSION, "action"],
        )
        for version in sorted(self.versions | {v for v, _ in self.decisions}):
            for action in ACTIONS:
                total.add_metric([version, action], self.decisions.get((version, action), 0))
        yield total
        failed = CounterMetricFamily(
            names.MONITOR_FAILED_ROLLOUT_PASSES_TOTAL, "Passes that could not list the store's rollout records."
        )
        failed.add_metric([], self.failures)
        yield failed
