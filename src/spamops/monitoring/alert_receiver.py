"""The Alertmanager webhook receiver of ``spamops trigger serve``: a firing alert starts a training run.

Alertmanager's contract: ``POST`` a ``version: "4"`` document (``status``, ``alerts[]``
with ``labels`` and ``fingerprint``); any 2xx means delivered, a 5xx is retried.  So an
unreachable API server answers 503, while "a run is already going" or "cooldown" are
successful outcomes (200): retrying them would not help.  Which alerts arrive here is
the Alertmanager route's choice (``retrain="true"`` in monitoring/alertmanager.yml).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from spamops.errors import BadInputError, SpamopsError
from spamops.triggers import TriggerResult

MAX_BODY = 1 << 20


def retrain_reason(doc: object) -> str | None:
    """The reason to retrain for a notification, or None when nothing in it fires."""
    if not isinstance(doc, dict) or doc.get("version") != "4" or not isinstance(doc.get("alerts"), list):
        raise BadInputError('not an Alertmanager webhook notification: want {"version": "4", "alerts": [...]}')
    firing = [a for a in doc["alerts"] if isinstance(a, dict) and a.get("status") == "firing"]
    if doc.get("status") != "firing" or not firing:
        return None
    names = sorted({str((a.get("labels") or {}).get("alertname", "?")) for a in firing})
    prints = sorted(str(a.get("fingerprint", "")) for a in firing)
    return f"alert {', '.join(names)} ({len(firing)} firing; fingerprints {', '.join(prints)})"


def make_server(host: str, port: int, trigger: Callable[[str], TriggerResult]) -> ThreadingHTTPServer:
    """An HTTP server on ``host:port``; ``trigger(reason)`` runs one at a time."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path in ("/healthz", "/readyz"):
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"error": f"no route {self.path}: POST Alertmanager notifications to /alerts"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path not in ("/", "/alerts"):
                self._answer(404, {"error": f"no route {self.path}: POST to /alerts"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self._answer(400, {"error": f"Content-Length must be 1..{MAX_BODY}"})
                return
            try:
                reason = retrain_reason(json.loads(self.rfile.read(length)))
            except (ValueError, BadInputError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            if reason is None:
                self._answer(200, {"outcome": "ignored", "detail": "no firing alert"})
                return
            try:
                with lock:
                    result = trigger(reason)
            except SpamopsError as exc:  # Alertmanager retries a 5xx
                print(f"trigger: {exc}", file=sys.stderr)
                self._answer(503, {"error": str(exc)})
                return
            except Exception as exc:  # noqa: BLE001 - answer (and get retried) rather than drop the connection
                print(f"trigger: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
                self._answer(500, {"error": f"unexpected {type(exc).__name__}: {exc}"})
                return
            print(f"trigger: {result.outcome} {result.job or ''} ({result.detail})", file=sys.stderr)
            self._answer(200, result.to_json())

        def _answer(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)
