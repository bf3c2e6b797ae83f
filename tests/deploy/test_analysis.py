"""One canary check against real Prometheus scraping real predictors (see conftest for the versions).

Each test sets the split the traffic driver (the data-plane stand-in) follows, waits for the
evidence, and asks :func:`spamops.deploy.analysis.run_check` - the same call ``spamops rollout
auto`` makes per check - with the default ``predictor`` success-rate provider: every count comes
from the predictors' own metrics, none from the driver's.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from spamops.config import AnalysisConfig, SuccessRateSource
from spamops.deploy import judge
from spamops.deploy.analysis import Windows, refuse_bad_selectors, run_check
from spamops.errors import BadInputError
from spamops.prometheus import Prometheus
from spamops_dev.ports import free_port

pytestmark = [pytest.mark.realdata, pytest.mark.monitoring]
WINDOW = 8
SETTINGS = judge.Settings.from_config(AnalysisConfig())


def _check(prometheus, stable: str, canary: str, windows: Windows, source=None):
    return run_check(Prometheus(prometheus.url), source or SuccessRateSource(), SETTINGS, stable, canary, windows)


def _route(traffic, prometheus, canary: str, percent: int) -> tuple[float, float]:
    """Route ``percent`` to ``canary`` until every target has been scraped a window later; the window covered."""
    driver, split = traffic
    split.canary, split.percent = canary, percent
    driver.paused.clear()
    start = time.time()
    prometheus.wait_for_scrapes_since(start + WINDOW, timeout=WINDOW + 30)
    return start, time.time()


def test_a_canary_of_the_same_quality_passes_on_the_predictors_own_counts(fleet, traffic, prometheus):
    start, now = _route(traffic, prometheus, fleet["same"], 50)

    check = _check(prometheus, fleet["stable"], fleet["same"], Windows(start, start, now))

    assert check.verdict.verdict == "pass", check.summary()
    rate = check.verdict.signal("success_rate")
    assert rate.value == 1.0 and rate.canary_n >= 20 and rate.unit == "requests"
    spam = check.verdict.signal("spam_rate")
    assert spam.unit == "instances" and spam.canary_n >= 5 * rate.canary_n - 5  # five instances per request
    latency = check.verdict.signal("latency")
    assert latency.value is not None and latency.value <= 0.05  # the sub-millisecond histogram, not KServe's 5 ms
    assert check.queries == 6  # model info, requests, 5xx, latency, predictions, probabilities: both sides at once


def test_a_canary_that_flags_far_more_spam_is_rejected_on_the_spam_rate(fleet, traffic, prometheus):
    start, now = _route(traffic, prometheus, fleet["spammy"], 50)

    check = _check(prometheus, fleet["stable"], fleet["spammy"], Windows(start, start, now))

    assert check.verdict.verdict == "fail" and "spam_rate" in check.verdict.rejected, check.summary()
    assert check.verdict.signal("spam_rate").value > 0.3
    assert "spam_rate fail" in check.summary()


def test_a_canary_that_answers_errors_fails_the_success_floor_through_the_predictor_provider(
    fleet, traffic, prometheus
):
    """Its predictor refuses the damaged artifact and answers 503; spamops_model_info still names its version."""
    start, now = _route(traffic, prometheus, fleet["broken"], 50)

    check = _check(prometheus, fleet["stable"], fleet["broken"], Windows(start, start, now))

    assert check.verdict.floors_failed == ["success_rate"], check.summary()
    rate = check.verdict.signal("success_rate")
    assert rate.value == 0.0 and rate.canary_n >= 20
    assert f"{rate.canary_n:.0f} of {rate.canary_n:.0f} requests answered 5xx" in rate.reason


def test_no_traffic_is_undecided_never_a_pass_and_says_why(fleet, traffic, prometheus):
    driver, _ = traffic
    driver.paused.set()
    try:
        prometheus.wait_for_scrapes_since(time.time() + WINDOW, timeout=WINDOW + 30)
        now = time.time()
        check = _check(prometheus, fleet["stable"], fleet["same"], Windows(now - WINDOW, now - WINDOW, now))
    finally:
        driver.paused.clear()

    assert check.verdict.verdict == "undecided"
    assert check.verdict.signal("success_rate").reason == "0 requests this step (< min_requests 20)"


def test_an_unreachable_prometheus_is_undecided_with_its_error(fleet):
    url = f"http://127.0.0.1:{free_port()}"
    now = time.time()

    check = run_check(
        Prometheus(url), SuccessRateSource(), SETTINGS, fleet["stable"], fleet["same"], Windows(now, now, now)
    )

    assert check.verdict.verdict == "undecided"
    error = check.verdict.error  # the OS's own wording of the refusal sits between the parentheses
    assert error.startswith(f"Prometheus {url} is unreachable (") and error.endswith(
        "); check --prometheus / rollout.prometheus_url"
    ), error


def test_at_100_percent_the_comparisons_keep_the_stable_side_the_rollout_measured(fleet, traffic, prometheus):
    """The last step sends stable nothing: its evidence is the rollout's, from the steps before."""
    rollout_start, _ = _route(traffic, prometheus, fleet["same"], 50)
    step_start, now = _route(traffic, prometheus, fleet["same"], 100)

    check = _check(prometheus, fleet["stable"], fleet["same"], Windows(rollout_start, step_start, now))

    assert check.verdict.verdict == "pass", check.summary()
    assert check.evidence.stable.requests >= 20
    assert check.evidence.canary_step.requests < check.evidence.canary.requests


def test_a_custom_provider_reading_a_counter_by_version(fleet, traffic, prometheus):
    """The driver's own counter (a stand-in data plane's) through provider custom: {version} selectors, no join."""
    source = SuccessRateSource(
        provider="custom",
        requests='spamops_gateway_requests_total{model_version="{version}"}',
        errors='spamops_gateway_requests_total{model_version="{version}", code=~"5.."}',
    )
    start, now = _route(traffic, prometheus, fleet["broken"], 50)

    check = _check(prometheus, fleet["stable"], fleet["broken"], Windows(start, start, now), source)

    assert check.verdict.signal("success_rate").value == 0.0, check.summary()
    assert check.verdict.signal("success_vs_stable").stable_n >= 20


def test_a_custom_selector_prometheus_refuses_is_bad_input_before_anything_is_routed(prometheus):
    """It passes the load-time checks (balanced, known placeholders) but its regex does not compile."""
    source = SuccessRateSource(
        provider="custom",
        requests='mesh_requests_total{version=~"({version}"}',
        errors='mesh_errors_total{version="{version}"}',
    )

    with pytest.raises(BadInputError) as refused:
        refuse_bad_selectors(Prometheus(prometheus.url), source, ("v1",))

    assert str(refused.value).startswith(
        "rollout.analysis.success_rate.requests 'mesh_requests_total{version=~\"(v1\"}': "
    )
    assert "(400)" in str(refused.value)


class _Garbled(BaseHTTPRequestHandler):
    """A server that answers Prometheus' API with a body that does not parse as samples."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "many"]}]}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_unexpected_error_while_measuring_is_an_undecided_check_with_the_error():
    server = HTTPServer(("127.0.0.1", free_port()), _Garbled)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        now = time.time()
        url = f"http://127.0.0.1:{server.server_port}"
        check = run_check(Prometheus(url), SuccessRateSource(), SETTINGS, "s", "c", Windows(now - 60, now - 60, now))
    finally:
        server.shutdown()

    assert check.verdict.verdict == "undecided"
    assert check.verdict.error.startswith("measuring failed: ValueError: could not convert string to float")
