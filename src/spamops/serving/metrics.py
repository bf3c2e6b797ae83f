"""Prometheus metrics of the predictor, exported on ``/metrics`` next to KServe's own histograms.

Names follow the Prometheus conventions (``spamops_`` prefix, ``_total`` for
counters, the unit last); ``docs/serving.md`` lists them.  The per-instance
histograms use :class:`BatchHistogram` rather than ``prometheus_client.Histogram``:
a 100-instance batch would otherwise pay three locked ``observe`` calls per
instance, a measurable share of a sub-millisecond request.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from spamops import names
from spamops.features import FEATURE_BUCKETS, FEATURE_METRICS, LABELS
from spamops.serving.settings import SMALL_BATCH

FOLD_VALUES = 8192  # queued values that trigger bucketing: bounds the queue's memory to 64 KiB per histogram
PROBABILITY_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))
LENGTH_BUCKETS = FEATURE_BUCKETS["length"]  # shared with the card's drift reference
PUNCT_BUCKETS = FEATURE_BUCKETS["punct"]
# Per request, sub-millisecond: a table lookup takes well under 1 ms, where KServe's request_predict_seconds
# starts at 5 ms. The rollout's latency signals read it (0.05 is the SpamopsHighPredictLatency ceiling).
PREDICT_LATENCY_BUCKETS = (
    0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class BatchHistogram(Collector):
    """A histogram with one ``model_version`` label that takes a whole batch per call."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [float(b) for b in buckets]
        self._bounds_array = np.asarray(self.bounds)
        self._series: dict[str, tuple[np.ndarray, list[float]]] = {}  # version -> (bucket counts incl. +Inf, [sum])
        self._pending: dict[str, list[np.ndarray]] = {}  # version -> arrays not yet bucketed
        self._pending_values = 0
        self._lock = threading.Lock()

    def observe_many(self, version: str, values: Sequence[float] | np.ndarray) -> None:
        """Add a whole batch: a loop below ``SMALL_BATCH`` values; above, the array is queued.

        Bucketing happens for all queued arrays at once, when ``FOLD_VALUES`` are
        waiting or a scrape reads the histogram: per 100-instance batch that is
        one list append instead of a search, a bincount and a sum per histogram.
        """
        if len(values) > SMALL_BATCH:
            arr = np.asarray(values, dtype=np.float64)
            with self._lock:
                self._pending.setdefault(version, []).append(arr)
                self._pending_values += len(arr)
                if self._pending_values >= FOLD_VALUES:
                    self._fold()
            return
        with self._lock:
            counts, total = self._series.get(version) or self._new_series(version)
            bounds = self.bounds
            for v in values:
                counts[bisect.bisect_left(bounds, v)] += 1
                total[0] += v

    def _fold(self) -> None:
        """Bucket every queued array (the caller holds the lock)."""
        for version, arrays in self._pending.items():
            counts, total = self._series.get(version) or self._new_series(version)
            arr = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
            counts += np.bincount(np.searchsorted(self._bounds_array, arr, side="left"), minlength=len(counts))
            total[0] += float(arr.sum())
        self._pending.clear()
        self._pending_values = 0

    def _new_series(self, version: str) -> tuple[np.ndarray, list[float]]:
        series = self._series[version] = (np.zeros(len(self.bounds) + 1, dtype=np.int64), [0.0])
        return series

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[names.LABEL_MODEL_VERSION])
        with self._lock:
            self._fold()
            snapshot = {k: (np.cumsum(counts).tolist(), total[0]) for k, (counts, total) in self._series.items()}
        labels = [*map(str, self.bounds), "+Inf"]
        for version, (cumulative, total) in snapshot.items():
            family.add_metric([version], list(zip(labels, cumulative, strict=True)), total)
        yield family


PREDICTIONS = Counter(
    names.PREDICTIONS_TOTAL,
    "Instances scored, by predicted label and model version.",
    ["label", names.LABEL_MODEL_VERSION],
)
SPAM_PROBABILITY = BatchHistogram(
    names.SPAM_PROBABILITY, "Predicted spam probability per scored instance.", PROBABILITY_BUCKETS
)
INPUT_LENGTH = BatchHistogram(
    FEATURE_METRICS["length"], "Message length feature of each scored instance.", LENGTH_BUCKETS
)
INPUT_PUNCT = BatchHistogram(
    FEATURE_METRICS["punct"], "Punctuation-count feature of each scored instance.", PUNCT_BUCKETS
)
INVALID_REQUESTS = Counter(names.INVALID_REQUESTS_TOTAL, "Requests refused with HTTP 400, by reason.", ["reason"])
INFERENCE_RESPONSES = Counter(
    names.INFERENCE_RESPONSES_TOTAL,
    "Inference requests (V1 :predict/:explain, V2 /infer) answered, by HTTP status code.",
    ["code"],
)
TABLE_FALLBACKS = Counter(
    names.TABLE_FALLBACKS_TOTAL,
    "Instances outside the precomputed decision table, answered by the pipeline itself.",
    [names.LABEL_MODEL_VERSION],
)
MODEL_READY = Gauge(names.MODEL_READY, "1 when the model is loaded and verified, else 0.", ["model_name"])
PREDICT_LATENCY = Histogram(
    names.PREDICT_LATENCY,
    "Time to answer one inference request (parse, score, build the answer), by model version.",
    [names.LABEL_MODEL_VERSION],
    buckets=PREDICT_LATENCY_BUCKETS,
)
MODEL_INFO = Gauge(
    names.MODEL_INFO,
    "The model version this process was given: 1 once served, 0 while its artifact is refused.",
    ["model_name", names.LABEL_MODEL_VERSION, "feature_spec"],
)
LOAD_FAILURES = Counter(
    names.MODEL_LOAD_FAILURES_TOTAL, "Refused or failed model loads, by reason.", ["model_name", "reason"]
)

for _histogram in (SPAM_PROBABILITY, INPUT_LENGTH, INPUT_PUNCT):
    REGISTRY.register(_histogram)


class VersionMetrics:
    """The metric children of one model version, looked up once instead of per request."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._ham, self._spam = (PREDICTIONS.labels(label, version) for label in LABELS)
        self._fallbacks = TABLE_FALLBACKS.labels(version)
        self._latency = PREDICT_LATENCY.labels(version)

    def answered(self, seconds: float) -> None:
        """Time one answered inference request (the rollout's latency signals read it)."""
        self._latency.observe(seconds)

    def record(
        self,
        rows: Sequence[tuple[float, float]] | np.ndarray,
        probability: Sequence[float] | np.ndarray,
        spam: int,
        fallbacks: int,
    ) -> None:
        """Count one scored batch: ``spam`` of its ``len(rows)`` instances were labelled spam."""
        if spam:
            self._spam.inc(spam)
        if len(rows) - spam:
            self._ham.inc(len(rows) - spam)
        if fallbacks:
            self._fallbacks.inc(fallbacks)
        SPAM_PROBABILITY.observe_many(self.version, probability)
        if isinstance(rows, np.ndarray):
            INPUT_LENGTH.observe_many(self.version, rows[:, 0])
            INPUT_PUNCT.observe_many(self.version, rows[:, 1])
        else:
            INPUT_LENGTH.observe_many(self.version, [r[0] for r in rows])
            INPUT_PUNCT.observe_many(self.version, [r[1] for r in rows])


_RESPONSE_CODES: dict[int, Counter] = {}


def count_response(status: int) -> None:
    """Count one answered inference request by status: the rollout's success rate reads it (docs/rollout.md)."""
    child = _RESPONSE_CODES.get(status)
    if child is None:
        child = _RESPONSE_CODES[status] = INFERENCE_RESPONSES.labels(str(status))
    child.inc()


def count_invalid(reason: str) -> None:
    """Count one HTTP 400 by ``reason``: which client mistakes are common is worth a dashboard."""
    INVALID_REQUESTS.labels(reason).inc()
