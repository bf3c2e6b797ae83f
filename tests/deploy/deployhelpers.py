"""The traffic driver - the one data-plane stand-in of the rollout tests.

The traffic driver stands in for the data plane (Knative's activator/queue-proxy
in Serverless mode, the Gateway in Standard mode), the one part of a canary that
cannot run here: it sends each request to the stable or the canary predictor in
the proportion the cluster currently declares (a callable reading the
InferenceService or HTTPRoute), and exports what a gateway exports - requests by
backend version and status code, ``spamops_gateway_requests_total`` - on its own
``/metrics`` for Prometheus to scrape.  Everything else is real: the
predictors are ``python -m spamops.serving`` processes, Prometheus is the Debian
``prometheus`` binary scraping them every second (:mod:`spamops_dev.prometheus`).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, make_wsgi_app

from spamops_dev.ports import LOOPBACK as HOST
from spamops_dev.ports import free_port


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D401 - silence the access log
        pass


class TrafficDriver:
    """Sends ``rate`` requests/s split by ``canary_percent()`` between two predictors (the data-plane stand-in)."""

    def __init__(
        self,
        backends: dict[str, str],  # version -> predictor base URL
        stable: str,
        canary: str,
        canary_percent: Callable[[], int],
        instances: list[list[int]],
        *,
        rate: float = 20.0,
        batch: int = 5,
        seed: int = 7,
    ) -> None:
        self.backends, self.stable, self.canary = backends, stable, canary
        self.canary_percent = canary_percent
        self.instances = instances
        self.rate, self.batch = rate, batch
        self.random = random.Random(seed)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "spamops_gateway_requests",
            "Requests the data plane routed, by backend version and status code.",
            ["model_version", "code"],
            registry=self.registry,
        )
        self.port = free_port()
        self.sent: dict[str, int] = {}
        self._stop = threading.Event()
        self.paused = threading.Event()

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> TrafficDriver:
        self._server = make_server(HOST, self.port, make_wsgi_app(self.registry), handler_class=_Quiet)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._thread = threading.Thread(target=self._drive, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._server.shutdown()

    def _drive(self) -> None:
        period = 1.0 / self.rate
        while not self._stop.is_set():
            started = time.monotonic()
            if not self.paused.is_set():
                try:
                    percent = self.canary_percent()
                except Exception:  # noqa: BLE001 - a transient read failure must not kill the driver
                    percent = 0
                version = self.canary if self.random.uniform(0, 100) < percent else self.stable
                self._send(version)
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _send(self, version: str) -> None:
        rows = [self.random.choice(self.instances) for _ in range(self.batch)]
        body = json.dumps({"instances": rows}).encode()
        req = urllib.request.Request(
            f"{self.backends[version]}/v1/models/spam:predict", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code = r.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            code = 503  # a gateway answers 503 when the backend is down
        self.requests.labels(version, str(code)).inc()
        self.sent[version] = self.sent.get(version, 0) + 1
