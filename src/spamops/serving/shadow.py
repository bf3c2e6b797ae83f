"""Shadow deployment: a second verified model scores the same instances off the response path.

Why here and not in the mesh: KServe has no shadowing, and Istio/Gateway
mirroring discards the mirrored answers, so nobody compares them per request.
Here the predictor pulls a second version (``SHADOW_STORAGE_URI``) through the
same verified path as ``--storage-uri`` (every file's sha256 against its card,
then :func:`~spamops.serving.artifact.load_artifact`'s checks before
unpickling), builds its decision table, and after each answer hands the
instances and the primary's labels to a bounded queue.  One thread per process
scores them with the shadow and counts agreement per (primary, shadow) version
pair.

The response is never waited on, changed or delayed by the shadow: a full queue
drops the batch and counts it (``spamops_shadow_dropped_total``), a shadow that
fails to score counts a failure.  A shadow that cannot be pulled or verified
leaves shadowing *disabled* (``spamops_shadow_ready`` 0, one ERROR line, the
debug endpoint names the reason) while the primary stays ready and keeps
answering: the shadow is an experiment, and an experiment must not take the
service down.  Readiness is the primary's alone.

Metrics and the disagreement sample are per process, like every predictor
metric (``--workers N``: each scrape reads one worker; Prometheus sums the
counters across pods and workers).  The sample holds features and both
answers only, never message text.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spamops import names
from spamops.features import FEATURE_NAMES, LABELS
from spamops.serving.artifact import Artifact, ArtifactError, load_artifact
from spamops.serving.lookup import DecisionTable, Scores, grid_bounds
from spamops.serving.settings import ServingSettings, ShadowSettings

logger = logging.getLogger("kserve.spamops")

SHADOW_ENV = names.SHADOW_STORAGE_URI_ENV
POLL_SECONDS = 0.01  # how often an idle shadow thread looks at its queue
MAX_BATCHES_PER_STEP = 64  # batches scored together at most, so one step holds the GIL briefly
DIRECTIONS = ("ham_to_spam", "spam_to_ham")  # primary's label -> shadow's label

SHADOW_READY = Gauge(
    names.SHADOW_READY, "1 when a shadow model is loaded, verified and scoring, else 0.", ["model_name"]
)
SHADOW_LOAD_FAILURES = Counter(
    names.SHADOW_LOAD_FAILURES_TOTAL,
    "Shadow models that could not be pulled, verified or loaded (shadowing disabled), by reason.",
    ["model_name", "reason"],
)


class Shadow:
    """The shadow model of one served model: its verified table, queue, worker thread and counts.

    Built before the server forks (the table is shared copy-on-write); the
    worker thread is started lazily in whichever process scores first, since
    threads do not survive ``fork``.
    """

    def __init__(
        self,
        model_name: str,
        primary_version: str | None,
        uri: str,
        settings: ShadowSettings,
        *,
        artifact: Artifact | None = None,
        table: DecisionTable | None = None,
        error: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.primary_version = primary_version or "unknown"
        self.uri = uri
        self.settings = settings
        self.artifact = artifact
        self.table = table
        self.error = error
        self.reason = reason
        self._pending: deque[tuple[Any, Scores]] = deque()
        self._busy = 0  # batches taken from the queue and not yet counted
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._sample: deque[dict] = deque(maxlen=settings.sample_size)
        self.counts = dict.fromkeys(
            (
                "requests_compared",
                "requests_dropped",
                "requests_failed",
                "compared",
                "agreements",
                "dropped",
                "failed",
                "primary_spam",
                "shadow_spam",
                *DIRECTIONS,
            ),
            0,
        )

    @property
    def enabled(self) -> bool:
        return self.table is not None

    @property
    def version(self) -> str | None:
        return self.artifact.version if self.artifact else None

    # -- the request path: never blocks, never wakes anyone ----------------
    def submit(self, rows: Sequence[tuple[float, float]] | np.ndarray, primary: Scores) -> None:
        """Queue one answered batch for the shadow; a full queue drops it and counts it.

        A ``deque`` append (atomic under the GIL) and nothing else: waking the
        shadow thread per request (``queue.Queue.put``'s condition variable)
        cost a context switch and a GIL hand-off per request, a quarter of the
        throughput in ``scripts/bench_shadow.py``; the thread polls instead.
        """
        if self.table is None:
            return
        if self._pid != os.getpid():
            self._start_worker()
        if len(self._pending) >= self.settings.queue_size:
            with self._lock:
                self.counts["requests_dropped"] += 1
                self.counts["dropped"] += len(rows)
            return
        self._pending.append((rows, primary))

    def _start_worker(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pending = deque()  # after a fork: this process's own queue and thread
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="spamops-shadow", daemon=True)
            self._thread.start()

    # -- the worker thread ------------------------------------------------
    def _run(self) -> None:
        pending = self._pending
        while True:
            if not pending:
                time.sleep(POLL_SECONDS)
                continue
            # Everything waiting, scored as one array: per-call overhead once per poll, not per request.
            items = [pending.popleft() for _ in range(min(len(pending), MAX_BATCHES_PER_STEP))]
            self._busy = len(items)
            try:
                self.compare_many(items)
            except Exception:  # noqa: BLE001 - a failing shadow is counted and logged, never raised into serving
                with self._lock:
                    self.counts["requests_failed"] += len(items)
                    self.counts["failed"] += sum(len(rows) for rows, _ in items)
                    first = self.counts["requests_failed"] == len(items)
                if first:
                    logger.exception(
                        "shadow %s failed to score a batch (counted in spamops_shadow_failed_total)", self.version
                    )
            finally:
                self._busy = 0

    def compare_many(self, items: list[tuple[Sequence[tuple[float, float]] | np.ndarray, Scores]]) -> None:
        """Score the batches of ``items`` with the shadow as one array and count them."""
        X = np.vstack([np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)) for rows, _ in items])
        primary = Scores(
            np.concatenate([np.asarray(p.probability, dtype=np.float64) for _, p in items]),
            np.concatenate([np.asarray(p.is_spam, dtype=bool) for _, p in items]),
            0,
        )
        table = self.table
        if table is None:  # never: only an enabled shadow queues batches (submit)
            return
        self.compare(X, primary, table.score_array(X), requests=len(items))

    def compare(self, X: np.ndarray, primary: Scores, shadow: Scores, requests: int = 1) -> None:
        """Count agreement over the rows of ``X`` and keep the disagreements (features and both answers only)."""
        p = np.asarray(primary.is_spam, dtype=bool)
        s = np.asarray(shadow.is_spam, dtype=bool)
        differ = np.flatnonzero(p != s)
        ham_to_spam = int(np.count_nonzero(s[differ]))
        samples = []
        keep = self.settings.sample_size
        if len(differ) and keep:
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            p_prob = np.asarray(primary.probability, dtype=np.float64)
            s_prob = np.asarray(shadow.probability, dtype=np.float64)
            for i in differ[-keep:].tolist():
                samples.append(
                    {
                        "at": at,
                        "features": {name: float(X[i, k]) for k, name in enumerate(FEATURE_NAMES)},
                        "primary": {"label": LABELS[bool(p[i])], "spam_probability": float(p_prob[i])},
                        "shadow": {"label": LABELS[bool(s[i])], "spam_probability": float(s_prob[i])},
                    }
                )
        n = len(p)
        with self._lock:
            c = self.counts
            c["requests_compared"] += requests
            c["compared"] += n
            c["agreements"] += n - len(differ)
            c["ham_to_spam"] += ham_to_spam
            c["spam_to_ham"] += len(differ) - ham_to_spam
            c["primary_spam"] += int(np.count_nonzero(p))
            c["shadow_spam"] += int(np.count_nonzero(s))
            self._sample.extend(samples)

    # -- reading ------------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, int], list[dict]]:
        with self._lock:
            return dict(self.counts), list(self._sample)

    def status(self) -> dict[str, Any]:
        """What ``GET /v1/models/<name>/shadow`` answers (docs/monitoring.md describes each field)."""
        counts, sample = self.snapshot()
        compared = counts["compared"]
        return {
            "model_name": self.model_name,
            "enabled": self.enabled,
            "primary_version": self.primary_version,
            "shadow_version": self.version,
            "shadow_storage_uri": self.uri,
            "error": self.error,
            "reason": self.reason,
            "pid": os.getpid(),
            "requests": {
                "compared": counts["requests_compared"],
                "dropped": counts["requests_dropped"],
                "failed": counts["requests_failed"],
            },
            "instances": {
                "compared": compared,
                "agreements": counts["agreements"],
                "dropped": counts["dropped"],
                "failed": counts["failed"],
            },
            "agreement_rate": counts["agreements"] / compared if compared else None,
            "spam_rate": {
                "primary": counts["primary_spam"] / compared if compared else None,
                "shadow": counts["shadow_spam"] / compared if compared else None,
            },
            "disagreements": {d: counts[d] for d in DIRECTIONS},
            "queue": {"depth": self.depth, "capacity": self.settings.queue_size},
            "sample": sample,
            "sample_capacity": self.settings.sample_size,
        }

    @property
    def depth(self) -> int:
        """Batches waiting for the shadow or being scored by it."""
        return len(self._pending) + self._busy


_SHADOWS: list[Shadow] = []


class ShadowCollector(Collector):
    """``spamops_shadow_*`` per (primary, shadow) version pair, read from the shadows' counts at scrape time.

    Counters are the source (``rate()`` over them gives windowed rates); the
    ratio gauges are since process start, for a glance and for tests.
    """

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        pair = [names.LABEL_MODEL_VERSION, "shadow_version"]
        requests = CounterMetricFamily(
            names.SHADOW_REQUESTS_TOTAL,
            "Answered requests handed to the shadow, by outcome (compared, dropped: queue full, failed).",
            labels=[*pair, "outcome"],
        )
        instances = CounterMetricFamily(
            names.SHADOW_COMPARED_TOTAL, "Instances scored by both the primary and the shadow.", labels=pair
        )
        agreements = CounterMetricFamily(
            names.SHADOW_AGREEMENTS_TOTAL, "Compared instances on which both models gave the same label.", labels=pair
        )
        disagreements = CounterMetricFamily(
            names.SHADOW_DISAGREEMENTS_TOTAL,
            "Compared instances labelled differently, by direction (primary label _to_ shadow label).",
            labels=[*pair, "direction"],
        )
        spam = CounterMetricFamily(
            names.SHADOW_SPAM_TOTAL,
            "Compared instances labelled spam, by side (primary or shadow).",
            labels=[*pair, "side"],
        )
        dropped = CounterMetricFamily(
            names.SHADOW_DROPPED_TOTAL, "Instances not shadowed because the shadow queue was full.", labels=pair
        )
        failed = CounterMetricFamily(
            names.SHADOW_FAILED_TOTAL, "Instances the shadow failed to score (see the log).", labels=pair
        )
        agreement = GaugeMetricFamily(
            names.SHADOW_AGREEMENT_RATIO,
            "Agreements / compared instances since the process started (absent before the first comparison).",
            labels=pair,
        )
        spam_rate = GaugeMetricFamily(
            names.SHADOW_SPAM_RATE,
            "Share of compared instances labelled spam since the process started, by side.",
            labels=[*pair, "side"],
        )
        depth = GaugeMetricFamily(names.SHADOW_QUEUE_DEPTH, "Batches waiting for the shadow.", labels=pair)
        capacity = GaugeMetricFamily(names.SHADOW_QUEUE_CAPACITY, "Most batches the queue holds.", labels=pair)
        for shadow in list(_SHADOWS):
            version = shadow.version
            if not shadow.enabled or version is None:
                continue
            key = [shadow.primary_version, version]
            c, _ = shadow.snapshot()
            for outcome in ("compared", "dropped", "failed"):
                requests.add_metric([*key, outcome], c[f"requests_{outcome}"])
            instances.add_metric(key, c["compared"])
            agreements.add_metric(key, c["agreements"])
            for direction in DIRECTIONS:
                disagreements.add_metric([*key, direction], c[direction])
            for side in ("primary", "shadow"):
                spam.add_metric([*key, side], c[f"{side}_spam"])
                if c["compared"]:
                    spam_rate.add_metric([*key, side], c[f"{side}_spam"] / c["compared"])
            dropped.add_metric(key, c["dropped"])
            failed.add_metric(key, c["failed"])
            if c["compared"]:
                agreement.add_metric(key, c["agreements"] / c["compared"])
            depth.add_metric(key, shadow.depth)
            capacity.add_metric(key, shadow.settings.queue_size)
        yield from (requests, instances, agreements, disagreements, spam, dropped, failed, agreement, spam_rate)
        yield from (depth, capacity)


REGISTRY.register(ShadowCollector())


def _verified(model_dir: Path, serving: ServingSettings) -> tuple[Artifact, DecisionTable]:
    artifact = load_artifact(model_dir)
    max_length, max_punct = grid_bounds(
        artifact.feature_statistics, serving.table_max_length, serving.table_max_punct, serving.table_max_cells
    )
    return artifact, DecisionTable(artifact.pipeline, max_length, max_punct)


def load_shadow(
    model_name: str, primary_version: str | None, uri: str, serving: ServingSettings, settings: ShadowSettings
) -> Shadow:
    """Pull ``uri`` (checksums verified), verify and load it; on any failure a *disabled* shadow saying why.

    The pulled copy is removed once loaded: the pipeline and the table are in
    memory, and nothing reads the directory again.
    """
    from spamops.serving import fetch

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="spamops-shadow-"))
    try:
        try:
            fetch.pull(uri, scratch / "model")
        except Exception as exc:  # noqa: BLE001 - whatever the store says, the URI is what the operator can fix
            text = str(exc) if uri in str(exc) else f"{uri}: {type(exc).__name__}: {exc}"
            return _disabled(model_name, primary_version, uri, settings, "pull_failed", text)
        try:
            artifact, table = _verified(scratch / "model", serving)
        except ArtifactError as exc:
            return _disabled(model_name, primary_version, uri, settings, exc.reason, f"{uri}: {exc}")
        except Exception as exc:  # noqa: BLE001
            return _disabled(
                model_name, primary_version, uri, settings, "load_failed", f"{uri}: {type(exc).__name__}: {exc}"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if artifact.version == primary_version:
        return _disabled(
            model_name,
            primary_version,
            uri,
            settings,
            "same_version",
            f"{uri}: the shadow is the served version {artifact.version} itself; nothing to compare",
        )
    shadow = Shadow(model_name, primary_version, uri, settings, artifact=artifact, table=table)
    _SHADOWS.append(shadow)
    SHADOW_READY.labels(model_name).set(1)
    logger.info(
        "model %s SHADOW READY: version %s from %s (verified, table %d cells) in %.2fs; "
        "compared against %s, queue %d, answers are the primary's only",
        model_name,
        artifact.version,
        uri,
        table.cells,
        time.perf_counter() - started,
        primary_version,
        settings.queue_size,
    )
    return shadow


def _disabled(
    model_name: str, primary_version: str | None, uri: str, settings: ShadowSettings, reason: str, message: str
) -> Shadow:
    SHADOW_LOAD_FAILURES.labels(model_name, reason).inc()
    SHADOW_READY.labels(model_name).set(0)
    logger.error(
        "model %s SHADOW DISABLED (%s): %s; the primary keeps serving without a shadow", model_name, reason, message
    )
    return Shadow(model_name, primary_version, uri, settings, error=message, reason=reason)


def add_route(app: FastAPI, registry: Any) -> None:
    """``GET /v1/models/<name>/shadow``: the shadow's counts and disagreement sample (this process's)."""

    async def shadow_status(model_name: str) -> JSONResponse:
        model = registry.get_model(model_name)
        if model is None:
            return JSONResponse(
                status_code=404, content={"error": f"model {model_name} does not exist", "reason": "model_not_found"}
            )
        shadow = getattr(model, "shadow", None)
        if shadow is None:
            return JSONResponse(
                status_code=404,
                content={
                    "error": f"model {model_name} has no shadow; set {SHADOW_ENV} (spamops rollout shadow VERSION)",
                    "reason": "no_shadow",
                },
            )
        return JSONResponse(shadow.status())

    app.add_api_route("/v1/models/{model_name}/shadow", shadow_status, methods=["GET"])
