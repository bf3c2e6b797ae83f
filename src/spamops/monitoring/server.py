"""The long-running monitor's HTTP side: ``GET /metrics``, ``GET /healthz`` and ``POST /feedback``.

``prometheus_client``'s own server answers GET only; feedback labels need a POST on the
same port, so this is a small ``ThreadingHTTPServer`` around the same collector registry.
``POST /feedback`` takes an ``id,label`` CSV (``text/csv``) or a JSON array of
``{"id", "label"}`` (``application/json``): 200 ``{"stored", "labels"}`` when accepted (and
the quality gauges are recomputed at once), 400 ``{"error", "rows"}`` naming every bad row
when not (nothing stored), 404 when the monitor runs without an inference log.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spamops.errors import SpamopsError
from spamops.monitoring.quality import VersionQuality, measure_quality, quality_metrics
from spamops.predictions.feedback import FeedbackError, accept, read_labels
from spamops.predictions.inference_log import LogReader

logger = logging.getLogger("spamops.monitor")

MAX_FEEDBACK_BYTES = 16 * 1024 * 1024  # ~400k labels of a UUID each


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
        bad = GaugeMetricFamily(
            "spamops_inference_log_bad_lines", "Log lines the monitor could not read (see its log)."
        )
        bad.add_metric([], self.reader.bad_lines)
        yield bad
        failed = CounterMetricFamily("spamops_monitor_failed_quality_passes", "Quality passes that failed since start.")
        failed.add_metric([], self.failures)
        yield failed


def serve_http(
    registry: CollectorRegistry, quality: QualityMonitor | None, bind: str, port: int
) -> ThreadingHTTPServer:
    """Start the monitor's HTTP server in a daemon thread; the server (``server_address`` has the port)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "spamops-monitor"

        def log_message(self, fmt: str, *args) -> None:  # one line per request is noise at scrape rate
            logger.debug(fmt, *args)

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict) -> None:
            self._send(status, json.dumps(doc).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": f"no such path {path}; try /metrics, /healthz or POST /feedback"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/feedback":
                self._json(404, {"error": f"no such path {self.path}; POST id,label CSV to /feedback"})
                return
            if quality is None:
                self._json(404, {"error": "this monitor runs without --inference-log and --feedback: no labels taken"})
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._json(411, {"error": "send the body with a Content-Length"})
                return
            if int(length) > MAX_FEEDBACK_BYTES:
                self._json(413, {"error": f"body over {MAX_FEEDBACK_BYTES} bytes: split the upload"})
                return
            data = self.rfile.read(int(length))
            try:
                stored, count = quality.upload(data, self.headers.get("Content-Type", "text/csv"), "POST /feedback")
            except FeedbackError as exc:
                self._json(400, {"error": str(exc), "rows": exc.rows})
                return
            except SpamopsError as exc:
                self._json(503, {"error": str(exc)})
                return
            self._json(200, {"stored": stored, "labels": count})

    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="spamops-monitor-http", daemon=True).start()
    return server
