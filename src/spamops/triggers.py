"""What a retraining trigger is asked and answers: the CronJob to start a run from, and the outcome.

The alert receiver (spamops.monitoring) hands each firing alert to a trigger and reports
its :class:`TriggerResult`; the trigger itself (spamops.deploy.retrain) talks to Kubernetes.
Both import these types from here, so neither half imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetrainTarget:
    """The CronJob whose template a triggered run uses, and how to reach the API server."""

    cronjob: str = "spamops-retrain"
    namespace: str = "spamops"
    cooldown: timedelta = timedelta(hours=6)
    kubeconfig: str | None = None  # None: in-cluster service account, else $KUBECONFIG


@dataclass(frozen=True)
class TriggerResult:
    """``created`` (with the Job's name), or why not: ``running`` or ``cooldown``."""

    outcome: str
    job: str | None = None
    detail: str = ""

    def to_json(self) -> dict:
        return {"outcome": self.outcome, "job": self.job, "detail": self.detail}
