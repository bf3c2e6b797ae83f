"""The long-running monitor's HTTP side: ``GET /metrics``, ``GET /healthz`` and ``POST /feedback``.

``prometheus_client``'s own server answers GET only; feedback labels need a POST on the
same port, so this is a small FastAPI application on uvicorn around the same collector
registry, with the conventions of :mod:`spamops.httpapi` (refusals are ``{"error",
"reason"}``; the body limit holds before the body is read).  ``POST /feedback`` takes an
``id,label`` CSV (``text/csv``, also ``text/plain`` or no ``Content-Type``) or a JSON
array of ``{"id", "label"}`` (``application/json``): 200 ``{"stored", "labels"}`` when
accepted (and the quality gauges are recomputed at once), 400 ``invalid_feedback`` (or
``invalid_json``) with ``rows`` naming every bad row when not (nothing stored), 404 ``no_inference_log`` when
the monitor runs without an inference log, 503 ``store_unavailable`` when the store fails.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spamops import httpapi, names
from spamops.errors import SpamopsError
from spamops.monitoring.quality import VersionQuality, measure_quality, quality_metrics
from spamops.predictions.feedback import FeedbackError, accept, read_labels
from spamops.predictions.inference_log import LogReader

logger = logging.getLogger("spamops.monitor")

MAX_FEEDBACK_BYTES = 16 * 1024 * 1024  # ~400k labels of a UUID each
CSV_CONTENT_TYPES = ("text/csv", "text/plain", "application/csv", "")  # "": no Content-Type, read as CSV
ROUTES = "GET /metrics, GET /healthz or POST /feedback"


class QualityMonitor(Collector):
    """The joined log and labels of one inference log / feedback URI pair, and their last quality pass."""

    def __init__(self, log_uri: str, feedback_uri: str, *, window_seconds: float, min_labels: int) -> None:
        self.reader = LogReader(log_uri)
        self.feedback_uri = feedback_uri
        self.window_seconds = window_seconds
        self.min_labels = min_labels
        self.reports: list[VersionQuality] = []
        self.problems: list[str] = []
        self.failures = 0
        self.last_success: float | None = None
        self._lock = threading.Lock()

    def run_pass(self) -> list[VersionQuality]:
        """Read new log objects and all labels, recompute every version's quality."""
        with self._lock:
            self.reader.refresh()
            labels, problems = read_labels(self.feedback_uri)
            now = datetime.now(UTC)
            self.reports = measure_quality(
                self.reader.predictions, labels, window_seconds=self.window_seconds, min_labels=self.min_labels, now=now
            )
            self.problems = self.reader.problems + problems
            self.last_success = now.timestamp()
            return self.reports

    def safe_pass(self) -> None:
        try:
            self.run_pass()
        except SpamopsError as exc:  # the store away: keep the last values, retry at the next pass
            self.failures += 1
            logger.warning("monitor: quality pass failed: %s", exc)

    def upload(self, data: bytes, content_type: str, source: str) -> tuple[str, int]:
        """Accept one feedback upload against the log as read now (see :func:`feedback.accept`)."""
        with self._lock:
            self.reader.refresh()
            result = accept(data, content_type, source, self.reader.predictions, self.feedback_uri)
        self.safe_pass()
        return result

    def collect(self):
        yield from quality_metrics(self.reports)
        bad = GaugeMetricFamily(names.INFERENCE_LOG_BAD_LINES, "Log lines the monitor could not read (see its log).")
        bad.add_metric([], self.reader.bad_lines)
        yield bad
        failed = CounterMetricFamily(
            names.MONITOR_FAILED_QUALITY_PASSES_TOTAL, "Quality passes that failed since start."
        )
        failed.add_metric([], self.failures)
        yield failed


def feedback_content_type(header: str | None) -> str:
    """The ``accept`` content type of an upload's ``Content-Type``; a 400 for one that is neither CSV nor JSON."""
    kind = httpapi.media_type(header)
    if kind in httpapi.JSON_CONTENT_TYPES:
        return "application/json"
    if kind in CSV_CONTENT_TYPES:
        return "text/csv"
    raise httpapi.Refusal(
        "unsupported_content_type",
        f"feedback sent as Content-Type {kind!r} is not read; send an id,label CSV as text/csv "
        'or a JSON array of {"id", "label"} as application/json',
    )


def monitor_app(registry: CollectorRegistry, quality: QualityMonitor | None) -> FastAPI:
    """The monitor's application: ``/metrics`` from ``registry``, ``/feedback`` into ``quality``."""
    app = FastAPI(title="spamops monitor", openapi_url=None, docs_url=None, redoc_url=None)
    httpapi.install(app, MAX_FEEDBACK_BYTES, ROUTES)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/feedback")
    async def feedback(request: Request) -> JSONResponse:
        if quality is None:
            raise httpapi.Refusal(
                "no_inference_log", "this monitor runs without --inference-log and --feedback: no labels taken", 404
            )
        content_type = feedback_content_type(request.headers.get("content-type"))
        data = await request.body()
        try:
            stored, count = await run_in_threadpool(quality.upload, data, content_type, "POST /feedback")
        except FeedbackError as exc:
            raise httpapi.Refusal(exc.reason, str(exc), rows=exc.rows) from None
        except SpamopsError as exc:
            logger.warning("monitor: feedback not stored: %s", exc)
            raise httpapi.Refusal("store_unavailable", str(exc), 503) from None
        return JSONResponse({"stored": stored, "labels": count})

    return app


def serve_http(registry: CollectorRegistry, quality: QualityMonitor | None, bind: str, port: int) -> httpapi.Server:
    """Bind ``bind:port`` and serve the monitor from a daemon thread; the server (``port`` is the one bound)."""
    return httpapi.Server(monitor_app(registry, quality), bind, port).start()
