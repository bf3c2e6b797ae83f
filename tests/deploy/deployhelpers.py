"""The traffic driver - the one data-plane stand-in of the rollout tests - and the versions it serves.

The traffic driver stands in for the data plane (Knative's activator/queue-proxy
in Serverless mode, the Gateway in Standard mode), the one part of a canary that
cannot run here: it sends each request to a predictor in the proportion the
cluster currently declares (a callable returning :class:`Backend` weights: in
tests/deploy a split the test sets, in tests/k8s the HTTPRoute weights or
KServe's ``status.components.predictor.traffic`` read from the test cluster),
answers 503 for a backend with no ready endpoint as a gateway does, and exports
what a gateway exports - requests by backend version and status code,
``spamops_gateway_requests_total`` - on its own ``/metrics`` for Prometheus to
scrape.  Everything else is real: the predictors are ``python -m
spamops.serving`` processes, Prometheus is the Debian ``prometheus`` binary
scraping them every second (:mod:`spamops_dev.prometheus`).

:func:`train_fleet` and :func:`start_predictors` make the versions both test
folders use (trained here on the shared real data):

* ``stable``  - the real 1k messages, promoted (production);
* ``same``    - the same data with another seed: same quality, a healthy canary;
* ``spammy``  - the real messages with 60 % of the ham relabelled spam, gate
  refused (``--no-promote``): a canary that flags far more spam;
* ``broken``  - a good version whose pulled ``model.joblib`` is then damaged: its
  predictor refuses the artifact (sha256 mismatch) and answers every predict with 503.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import yaml
from prometheus_client import CollectorRegistry, Counter, make_wsgi_app

from spamops_dev.ports import free_port
from spamops_dev.predictor import Predictor

HOST = "127.0.0.1"
__all__ = ["Backend", "TrafficDriver", "free_port", "start_predictors", "train_fleet"]


@dataclass(frozen=True)
class Backend:
    """One weighted destination of the declared split; ``ready=False``: no ready endpoint (the gateway's 503)."""

    version: str
    weight: float
    ready: bool = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D401 - silence the access log
        pass


class TrafficDriver:
    """Sends ``rate`` requests/s split by ``routes()`` between predictors (the data-plane stand-in)."""

    def __init__(
        self,
        backends: dict[str, str],  # version -> predictor base URL
        routes: Callable[[], list[Backend]],
        instances: list[list[int]],
        *,
        rate: float = 20.0,
        batch: int = 5,
        seed: int = 7,
    ) -> None:
        self.backends = backends
        self.routes = routes
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

    def _pick(self) -> Backend | None:
        try:
            routes = [b for b in self.routes() if b.weight > 0]
        except Exception:  # noqa: BLE001 - a transient read failure must not kill the driver
            return None
        if not routes:
            return None
        return self.random.choices(routes, weights=[b.weight for b in routes])[0]

    def _drive(self) -> None:
        period = 1.0 / self.rate
        while not self._stop.is_set():
            started = time.monotonic()
            if not self.paused.is_set():
                backend = self._pick()
                if backend is not None:
                    self._send(backend)
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _send(self, backend: Backend) -> None:
        version = backend.version
        url = self.backends.get(version)
        code = 503  # a gateway answers 503 when the backend has no ready endpoint or is down
        if backend.ready and url:
            rows = [self.random.choice(self.instances) for _ in range(self.batch)]
            body = json.dumps({"instances": rows}).encode()
            req = urllib.request.Request(
                f"{url}/v1/models/spam:predict", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except OSError:
                pass
        self.requests.labels(version, str(code)).inc()
        self.sent[version] = self.sent.get(version, 0) + 1


# ---------------------------------------------------------------- the versions
def _train(store: Path, tmp: Path, name: str, data: Path, seed: int, *extra: str) -> str:
    from spamops.cli import main

    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "train": {"seed": seed}, "data": {"sources": [str(data)]}}))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["train", "--config", str(config), "--quiet", "--json", *extra])
    assert code in (0, 3), buffer.getvalue()
    return json.loads(buffer.getvalue())["version"]


def train_fleet(real_data: Path, tmp: Path) -> dict:
    """The store and the three versions: ``{"store": Path, "stable": v, "same": v, "spammy": v, "instances": rows}``."""
    store = tmp / "store"
    real = real_data / "smsspamcollection-1k.csv"
    rows = list(csv.DictReader(real.open()))
    rng = random.Random(3)
    noisy = tmp / "noisy.csv"
    with noisy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "length", "punct"])
        writer.writeheader()
        for row in rows:
            label = "spam" if row["label"] == "ham" and rng.random() < 0.6 else row["label"]
            writer.writerow({"label": label, "length": row["length"], "punct": row["punct"]})
    stable = _train(store, tmp, "stable", real, 42)
    same = _train(store, tmp, "same", real, 7, "--no-promote")
    spammy = _train(store, tmp, "spammy", noisy, 42, "--no-promote")
    broken = _train(store, tmp, "broken", real, 11, "--no-promote")
    instances = [[int(r["length"]), int(r["punct"])] for r in rows]
    return {
        "store": store, "stable": stable, "same": same, "spammy": spammy, "broken": broken, "instances": instances,
    }  # fmt: skip


def start_predictors(fleet: dict, tmp: Path) -> dict[str, Predictor]:
    """One real predictor process per version (version -> Predictor), each serving its pulled model."""
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    registry = Registry(open_store(str(fleet["store"])), "spam")
    started: dict[str, Predictor] = {}
    try:
        for key in ("stable", "same", "spammy", "broken"):
            version = fleet[key]
            model_dir = registry.pull(version, tmp / f"mnt-{key}" / "model")
            if key == "broken":  # damaged after the verified pull, as a corrupt volume would be
                with (model_dir / "model.joblib").open("ab") as handle:
                    handle.write(b"\0")
            started[version] = Predictor(["--model_dir", str(model_dir)], model_dir.parent / "predictor.log").start()
    except BaseException:
        for server in started.values():
            server.stop()
        raise
    return started
