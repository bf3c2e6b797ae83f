"""The success-rate presets for data planes that cannot run here, on their own projects' metric shapes.

Each exporter below serves series labelled exactly as the named project's own test data
writes them, next to ``spamops_model_info`` as the predictor exports it; a real Prometheus
scrapes them every second, and :func:`spamops.deploy.analysis.gather` counts per version
through the preset, as ``rollout auto`` does:

* **Istio** - ``istio_requests_total`` with the labels of istio/proxy's
  ``testdata/metric/server_request_total.yaml.tmpl`` (``reporter="destination"``, the server
  sidecar). With Istio's metrics merging the sidecar serves the app's metrics and its own on
  one scrape address, so the exporter serves both.
* **Envoy Gateway** - Envoy's per-endpoint counters (``enablePerEndpointStats``) in the
  Prometheus form of envoyproxy/envoy's ``test/server/admin/prometheus_stats_test.cc``
  (``envoy_cluster_endpoint_<stat>{envoy_cluster_name=…,envoy_endpoint_address="ip:port"}``),
  the cluster named as Envoy Gateway names a route rule (``httproute/<ns>/<route>/rule/<n>``,
  its docs' retry task). The gateway is another scrape target; the endpoint address is the
  predictor's own scrape address.
"""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from spamops.config import SuccessRateSource
from spamops.deploy.analysis import Windows, gather
from spamops.prometheus import Prometheus as Client
from spamops_dev.ports import free_port
from spamops_dev.prometheus import Prometheus

pytestmark = pytest.mark.monitoring

ISTIO_LABELS = {  # istio/proxy testdata/metric/server_request_total.yaml.tmpl, reporter=destination
    "reporter": "destination", "source_workload": "productpage-v1", "source_canonical_service": "productpage-v1",
    "source_canonical_revision": "version-1", "source_workload_namespace": "default", "source_principal": "unknown",
    "source_app": "productpage", "source_version": "v1", "destination_workload": "ratings-v1",
    "destination_workload_namespace": "default", "destination_principal": "unknown", "destination_app": "ratings",
    "destination_version": "v1", "destination_service": "server.default.svc.cluster.local",
    "destination_canonical_service": "ratings", "destination_canonical_revision": "version-1",
    "destination_service_name": "server", "destination_service_namespace": "default", "destination_port": "8080",
    "request_protocol": "http", "grpc_response_status": "", "response_flags": "-", "connection_security_policy": "none",
}  # fmt: skip


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Exporter:
    """A /metrics endpoint on loopback: one registry, plus raw exposition lines (``raw``) where names must be exact."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.raw: dict[str, float] = {}  # 'name{labels}' -> value, served as written (Envoy adds no _total)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

        def app(environ, start_response):
            body = generate_latest(self.registry)  # the text format: raw lines can follow it
            body += "".join(f"{series} {value}\n" for series, value in list(self.raw.items())).encode()
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [body]

        self._server = make_server("127.0.0.1", self.port, app, handler_class=_Quiet)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def model_info(self, version: str) -> None:
        info = Gauge(
            "spamops_model_info",
            "served version",
            ["model_name", "model_version", "feature_spec"],
            registry=self.registry,
        )
        info.labels("spam", version, "2").set(1)

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def exporters(tmp_path):
    started: list[Exporter] = []

    def start(n: int) -> list[Exporter]:
        started.extend(Exporter() for _ in range(n))
        return started[-n:]

    yield start
    for e in started:
        e.stop()


def _scraped(tmp_path, exporters: list[Exporter]) -> Prometheus:
    server = Prometheus(tmp_path / "prometheus", [e.address for e in exporters]).start()
    server.wait_for_targets_up(len(exporters))
    return server


def _count(server: Prometheus, step, scrapes: float = 5.0) -> tuple[float, float]:
    """Run ``step()`` (every 0.1 s) from a scrape of every target until ``scrapes`` seconds of scrapes later, then
    until every target was scraped after the last step: the window the counts cover."""
    server.wait_for_scrapes_since(time.time())
    start = time.time()
    while True:
        step()
        if time.time() - start >= scrapes:
            break
        time.sleep(0.1)  # the workload's pace, not a wait for anything
    server.wait_for_scrapes_since(time.time())
    return start, time.time()


def test_the_istio_preset_counts_requests_and_5xx_per_version(tmp_path, exporters):
    stable_pod, canary_pod = exporters(2)
    counters = {}
    for pod, version in ((stable_pod, "v-stable"), (canary_pod, "v-canary")):
        pod.model_info(version)
        counters[version] = Counter(
            "istio_requests", "Istio request count", [*ISTIO_LABELS, "response_code"], registry=pod.registry
        )
    sent = {"v-stable": [0, 0], "v-canary": [0, 0]}

    def step():
        for version, errors_every in (("v-stable", 0), ("v-canary", 4)):
            failed = errors_every and sent[version][0] % errors_every == 0
            counters[version].labels(**ISTIO_LABELS, response_code="503" if failed else "200").inc()
            sent[version][0] += 1
            sent[version][1] += bool(failed)

    server = _scraped(tmp_path, [stable_pod, canary_pod])
    try:
        start, now = _count(server, step)
        evidence = gather(
            Client(server.url), SuccessRateSource(provider="istio"), "v-stable", "v-canary", Windows(start, start, now)
        )
    finally:
        server.stop()

    canary = evidence.canary
    assert (canary.requests, canary.errors) == (sent["v-canary"][0], sent["v-canary"][1])
    assert (evidence.stable.requests, evidence.stable.errors) == (sent["v-stable"][0], 0)


def test_the_envoy_gateway_preset_joins_per_endpoint_counts_to_the_predictors_address(tmp_path, exporters):
    stable_pod, canary_pod, gateway = exporters(3)
    stable_pod.model_info("v-stable")
    canary_pod.model_info("v-canary")
    rule = "httproute/spamops/spam-spamops-canary/rule/0"
    sent = {"v-stable": [0, 0], "v-canary": [0, 0]}

    def series(stat: str, pod: Exporter) -> str:
        return f'envoy_cluster_endpoint_{stat}{{envoy_cluster_name="{rule}",envoy_endpoint_address="{pod.address}"}}'

    def step():
        for pod, version in ((stable_pod, "v-stable"), (canary_pod, "v-canary")):
            sent[version][0] += 1
            sent[version][1] += version == "v-canary"
            gateway.raw[series("rq_total", pod)] = sent[version][0]
            gateway.raw[series("rq_error", pod)] = sent[version][1]

    server = _scraped(tmp_path, [stable_pod, canary_pod, gateway])
    try:
        start, now = _count(server, step)
        source = SuccessRateSource(provider="envoy-gateway")
        evidence = gather(Client(server.url), source, "v-stable", "v-canary", Windows(start, start, now))
    finally:
        server.stop()

    assert (evidence.canary.requests, evidence.canary.errors) == tuple(sent["v-canary"])
    assert (evidence.stable.requests, evidence.stable.errors) == (sent["v-stable"][0], 0)
