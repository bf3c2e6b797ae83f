"""Concept drift: the served versions' accuracy, spam recall and F1 on the predictions that got a true label.

Data drift says the inputs changed; only labels say whether the model is still right.
The inference log (what each version answered) is joined by prediction id with the
feedback labels (what was true); over the predictions made in the last window each
version gets its rolling quality and the delay between prediction and label.  Like the
drift gauges, quality values exist only from ``min_labels`` labelled predictions on;
below that the series is absent, not zero, so an alert cannot fire on three labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily

from spamops import names
from spamops.predictions.feedback import joined
from spamops.records import FeedbackLabel, LoggedPrediction

DEFAULT_QUALITY_WINDOW = "7d"
DEFAULT_MIN_LABELS = 100
DELAY_QUANTILES = (0.5, 0.9)


@dataclass
class VersionQuality:
    """One version's rolling quality over the window (``None`` below the minimum or when undefined)."""

    model_version: str
    logged: int
    labelled: int
    accuracy: float | None = None
    spam_recall: float | None = None
    spam_f1: float | None = None
    label_delay_seconds: dict[float, float] | None = None

    def to_json(self) -> dict:
        return {
            "model_version": self.model_version,
            "logged": self.logged,
            "labelled": self.labelled,
            "accuracy": self.accuracy,
            "spam_recall": self.spam_recall,
            "spam_f1": self.spam_f1,
            "label_delay_seconds": {str(q): v for q, v in (self.label_delay_seconds or {}).items()},
        }


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def measure_quality(
    predictions: dict[str, LoggedPrediction],
    labels: dict[str, FeedbackLabel],
    *,
    window_seconds: float,
    min_labels: int,
    now: datetime,
) -> list[VersionQuality]:
    """Per version, over the predictions made in ``(now - window, now]``."""
    start = now.timestamp() - window_seconds
    logged: dict[str, int] = defaultdict(int)
    for p in predictions.values():
        if p.time.timestamp() > start:
            logged[p.model_version] += 1
    by_version: dict[str, list[tuple[LoggedPrediction, FeedbackLabel]]] = defaultdict(list)
    for prediction, label in joined(predictions, labels):
        if prediction.time.timestamp() > start:
            by_version[prediction.model_version].append((prediction, label))
    reports = []
    for version in sorted(logged):
        pairs = by_version.get(version, [])
        report = VersionQuality(version, logged[version], len(pairs))
        if pairs:
            delays = sorted(max(0.0, (lab.received_at - p.time).total_seconds()) for p, lab in pairs)
            report.label_delay_seconds = {q: _quantile(delays, q) for q in DELAY_QUANTILES}
        if len(pairs) >= min_labels:
            tp = sum(1 for p, lab in pairs if p.predicted == "spam" and lab.label == "spam")
            fp = sum(1 for p, lab in pairs if p.predicted == "spam" and lab.label == "ham")
            fn = sum(1 for p, lab in pairs if p.predicted == "ham" and lab.label == "spam")
            correct = sum(1 for p, lab in pairs if p.predicted == lab.label)
            report.accuracy = correct / len(pairs)
            report.spam_recall = tp / (tp + fn) if tp + fn else None
            report.spam_f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        reports.append(report)
    return reports


def quality_metrics(reports: Iterable[VersionQuality]) -> list[GaugeMetricFamily]:
    """The gauges of the last quality pass (see docs/monitoring.md)."""
    v = [names.LABEL_MODEL_VERSION]
    accuracy = GaugeMetricFamily(names.QUALITY_ACCURACY, "Rolling accuracy on labelled predictions.", labels=v)
    recall = GaugeMetricFamily(names.QUALITY_SPAM_RECALL, "Rolling spam recall on labelled predictions.", labels=v)
    f1 = GaugeMetricFamily(names.QUALITY_SPAM_F1, "Rolling spam F1 on labelled predictions.", labels=v)
    labelled = GaugeMetricFamily(
        names.QUALITY_LABELLED_PREDICTIONS, "Logged predictions in the window that have a label.", labels=v
    )
    logged = GaugeMetricFamily(names.QUALITY_LOGGED_PREDICTIONS, "Logged predictions in the window.", labels=v)
    delay = GaugeMetricFamily(
        names.LABEL_DELAY_SECONDS,
        "Time from prediction to its label, over the window's labelled predictions.",
        labels=[names.LABEL_MODEL_VERSION, "quantile"],
    )
    for r in reports:
        key = [r.model_version]
        labelled.add_metric(key, r.labelled)
        logged.add_metric(key, r.logged)
        for family, value in ((accuracy, r.accuracy), (recall, r.spam_recall), (f1, r.spam_f1)):
            if value is not None:
                family.add_metric(key, value)
        for q, seconds in (r.label_delay_seconds or {}).items():
            delay.add_metric([r.model_version, str(q)], seconds)
    return [accuracy, recall, f1, labelled, logged, delay]
