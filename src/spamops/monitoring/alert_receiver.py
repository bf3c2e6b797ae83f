"""The Alertmanager webhook receiver of ``spamops trigger serve``: a firing alert starts a training run.

Alertmanager's contract: ``POST`` a ``version: "4"`` document (``status``, ``alerts[]``
with ``labels`` and ``fingerprint``); any 2xx means delivered, a 5xx is retried.  So an
unreachable API server answers 503, while "a run is already going" or "cooldown" are
successful outcomes (200): retrying them would not help.  Which alerts arrive here is
the Alertmanager route's choice (``retrain="true"`` in monitoring/alertmanager.yml).

A FastAPI application on uvicorn with the conventions of :mod:`spamops.httpapi`: every
refusal is ``{"error", "reason"}`` (400 ``invalid_json``, ``not_a_notification``,
``unsupported_content_type``, ``body_too_large``; 503 ``cluster_unavailable``), and the
body limit holds before the body is read.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from spamops import httpapi
from spamops.errors import BadInputError, SpamopsError
from spamops.triggers import TriggerResult

MAX_BODY = 1 << 20
ROUTES = "POST Alertmanager notifications to /alerts (GET /healthz, /readyz)"


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


def receiver_app(trigger: Callable[[str], TriggerResult]) -> FastAPI:
    """The webhook application; ``trigger(reason)`` runs one at a time."""
    lock = threading.Lock()
    app = FastAPI(title="spamops trigger", openapi_url=None, docs_url=None, redoc_url=None)
    httpapi.install(app, MAX_BODY, ROUTES)

    @app.get("/healthz")
    @app.get("/readyz")
    def healthz() -> dict:
        return {"status": "ok"}

    def run(reason: str) -> TriggerResult:
        with lock:
            return trigger(reason)

    @app.post("/")
    @app.post("/alerts")
    async def alerts(request: Request) -> dict:
        httpapi.json_content(request.headers.get("content-type", ""), "the notification")
        body = await request.body()
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise httpapi.Refusal("invalid_json", f"body is not valid JSON: {exc}") from None
        try:
            reason = retrain_reason(doc)
        except BadInputError as exc:
            raise httpapi.Refusal("not_a_notification", str(exc)) from None
        if reason is None:
            return {"outcome": "ignored", "detail": "no firing alert"}
        try:
            result = await run_in_threadpool(run, reason)
        except SpamopsError as exc:  # Alertmanager retries a 5xx
            print(f"trigger: {exc}", file=sys.stderr)
            raise httpapi.Refusal("cluster_unavailable", str(exc), 503) from None
        except Exception as exc:  # noqa: BLE001 - answer (and get retried) rather than drop the connection
            print(f"trigger: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
            raise httpapi.Refusal("internal_error", f"unexpected {type(exc).__name__}: {exc}", 500) from None
        print(f"trigger: {result.outcome} {result.job or ''} ({result.detail})", file=sys.stderr)
        return result.to_json()

    return app


def make_server(host: str, port: int, trigger: Callable[[str], TriggerResult]) -> httpapi.Server:
    """The receiver bound to ``host:port`` (``serve_forever`` runs it); ``trigger(reason)`` runs one at a time."""
    return httpapi.Server(receiver_app(trigger), host, port)
