"""The drift monitor: production histograms of all replicas against each version's training reference.

One pass (:func:`measure`) reads the window's bucket increases of every feature and the
predicted labels from Prometheus, finds each served version's card in the store and
compares.  :class:`DriftCollector` exports the last pass as gauges; a value exists only
where a verdict does, so below the minimum sample size there is no series at all.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from spamops import names
from spamops.errors import SpamopsError
from spamops.features import FEATURE_METRICS
from spamops.monitoring.drift import FeatureDrift, compare
from spamops.prometheus import Prometheus
from spamops.records import FeatureReference, ModelCard

DEFAULT_WINDOW = "1h"
DEFAULT_MIN_SAMPLES = 500
PREDICTIONS = names.PREDICTIONS_TOTAL


@dataclass
class VersionReport:
    """Everything measured for one served model version."""

    model_version: str
    features: list[FeatureDrift] = field(default_factory=list)
    predictions: int = 0
    predicted_spam_rate: float | None = None
    reference_spam_rate: float | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "model_version": self.model_version,
            "predictions": self.predictions,
            "predicted_spam_rate": self.predicted_spam_rate,
            "reference_spam_rate": self.reference_spam_rate,
            "features": [f.to_json() for f in self.features],
            "problems": self.problems,
        }


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Seconds of a Prometheus-style duration (``90s``, ``15m``, ``1h``, ``1d``; ``0s`` with ``allow_zero``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or (int(text[:-1]) == 0 and not allow_zero):
        whole = "whole" if allow_zero else "positive whole"
        raise ValueError(f"{text!r} is not a duration: write a {whole} number and s, m, h or d (e.g. 1h)")
    return int(text[:-1]) * units[text[-1]]


def measure(
    api: Prometheus,
    card_of: Callable[[str], ModelCard | None],
    *,
    window_seconds: float,
    min_samples: int,
    match: str = "",
    now: float | None = None,
) -> list[VersionReport]:
    """One pass over every version seen in the window; ``match`` adds label matchers (e.g. one replica)."""
    selector = f"{{{match}}}" if match else ""
    buckets: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    for feature, metric in FEATURE_METRICS.items():
        increases = api.window_increase(
            f"{metric}_bucket{selector}", (names.LABEL_MODEL_VERSION, "le"), window_seconds, now
        )
        for (version, le), value in increases.items():
            buckets[version][feature][math.inf if le == "+Inf" else float(le)] = value
    labels = api.window_increase(f"{PREDICTIONS}{selector}", (names.LABEL_MODEL_VERSION, "label"), window_seconds, now)
    reports = []
    for version in sorted(buckets):
        report = VersionReport(version)
        card = _card(card_of, version, report)
        reference = card.feature_reference if card is not None else None
        for feature in FEATURE_METRICS:
            drift = _feature(feature, version, buckets[version].get(feature, {}), card, reference, min_samples, report)
            if drift is not None:
                report.features.append(drift)
        spam = labels.get((version, "spam"), 0.0)
        report.predictions = int(round(spam + labels.get((version, "ham"), 0.0)))
        if report.predictions >= min_samples and report.predictions > 0:
            report.predicted_spam_rate = spam / report.predictions
            report.reference_spam_rate = reference.spam_rate if reference is not None else None
        reports.append(report)
    return reports


def _card(card_of: Callable[[str], ModelCard | None], version: str, report: VersionReport) -> ModelCard | None:
    try:
        card = card_of(version)
    except SpamopsError as exc:
        report.problems.append(f"no model card for {version}: {exc}")
        return None
    if card is None:
        report.problems.append(f"no model card for {version} in the store")
    return card


def _feature(
    feature: str,
    version: str,
    cumulative: dict[float, float],
    card: ModelCard | None,
    reference: FeatureReference | None,
    min_samples: int,
    report: VersionReport,
) -> FeatureDrift | None:
    if card is None or not cumulative:
        return None
    ref = reference.buckets.get(feature) if reference is not None else None
    if not ref:
        report.problems.append(
            f"{version}: the card has no feature_reference for {feature} (trained before drift monitoring)"
        )
        return None
    bounds = sorted(b for b in cumulative if b != math.inf)
    if [float(b) for b in ref.bounds] != bounds or math.inf not in cumulative:
        report.problems.append(f"{version}: {feature} buckets differ between the predictor and the card's reference")
        return None
    running = [cumulative[b] for b in [*bounds, math.inf]]
    production = [max(0.0, c - p) for c, p in zip(running, [0.0, *running[:-1]], strict=True)]
    stats = card.feature_statistics.get(feature)
    std = stats.std if stats is not None else None
    return compare(
        feature,
        version,
        bounds,
        [float(c) for c in ref.counts],
        production,
        reference_std=float(std) if std else None,
        min_samples=min_samples,
    )


class DriftCollector(Collector):
    """Gauges of the last pass; series exist only where a statistic was computed."""

    def __init__(self) -> None:
        self.reports: list[VersionReport] = []
        self.last_success: float | None = None
        self.failures = 0

    def collect(self) -> Iterable[Metric]:
        fl = ["feature", names.LABEL_MODEL_VERSION]
        psi = GaugeMetricFamily(names.FEATURE_DRIFT_PSI, "PSI of production vs training, all replicas.", labels=fl)
        ks = GaugeMetricFamily(names.FEATURE_DRIFT_KS, "KS distance of the binned CDFs, all replicas.", labels=fl)
        ws = GaugeMetricFamily(
            names.FEATURE_DRIFT_WASSERSTEIN_NORMED,
            "Binned Wasserstein distance over the reference standard deviation.",
            labels=fl,
        )
        samples = GaugeMetricFamily(
            names.FEATURE_DRIFT_SAMPLES, "Production observations in the window, all replicas.", labels=fl
        )
        predicted = GaugeMetricFamily(
            names.PREDICTED_SPAM_RATE,
            "Share of instances labelled spam in the window.",
            labels=[names.LABEL_MODEL_VERSION],
        )
        reference = GaugeMetricFamily(
            names.REFERENCE_SPAM_RATE,
            "Share of spam in the version's training data.",
            labels=[names.LABEL_MODEL_VERSION],
        )
        for report in self.reports:
            for f in report.features:
                key = [f.feature, f.model_version]
                samples.add_metric(key, f.samples)
                if f.psi is not None:
                    psi.add_metric(key, f.psi)
                if f.ks is not None:
                    ks.add_metric(key, f.ks)
                if f.wasserstein_normed is not None:
                    ws.add_metric(key, f.wasserstein_normed)
            if report.predicted_spam_rate is not None:
                predicted.add_metric([report.model_version], report.predicted_spam_rate)
                if report.reference_spam_rate is not None:
                    reference.add_metric([report.model_version], report.reference_spam_rate)
        yield from (psi, ks, ws, samples, predicted, reference)
        last = GaugeMetricFamily(names.MONITOR_LAST_SUCCESS, "End of the last successful pass.")
        if self.last_success is not None:
            last.add_metric([], self.last_success)
        yield last
        failures = CounterMetricFamily(names.MONITOR_FAILED_PASSES_TOTAL, "Passes that failed since start.")
        failures.add_metric([], self.failures)
        yield failures
