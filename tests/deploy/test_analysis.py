"""One canary check against real Prometheus scraping real predictors (see conftest for the versions).

Each test sets the split the traffic driver (the data-plane stand-in) follows,
waits one window, and asks :func:`spamops.deploy.analysis.run_check` - the same
call ``spamops rollout auto`` makes per interval.
"""

from __future__ import annotations

import time

import pytest

from spamops.deploy.analysis import Queries, Thresholds, run_check
from spamops.prometheus import Prometheus
from spamops_dev.ports import free_port

pytestmark = [pytest.mark.realdata, pytest.mark.monitoring]
WINDOW = 8


def _check(prometheus, stable: str, canary: str):
    return run_check(Prometheus(prometheus.url), Queries(), Thresholds(), stable, canary, f"{WINDOW}s")


def _a_full_window_since_now(prometheus) -> None:
    """Wait until every target's newest sample is a window younger than now: from then on the check's
    window holds only what the traffic did after this call."""
    prometheus.wait_for_scrapes_since(time.time() + WINDOW, timeout=WINDOW + 30)


def _route(traffic, prometheus, canary: str, percent: int) -> None:
    driver, split = traffic
    split.canary, split.percent = canary, percent  # the driver reads the split for every request
    driver.paused.clear()
    _a_full_window_since_now(prometheus)


def test_a_canary_of_the_same_quality_passes(fleet, traffic, prometheus):
    _route(traffic, prometheus, fleet["same"], 50)

    check = _check(prometheus, fleet["stable"], fleet["same"])

    assert check.verdict == "pass", check.summary()
    assert check.canary.requests >= 20 and check.stable.requests >= 20
    assert check.canary.success_rate == 1.0
    assert 0 < check.canary.p99_seconds < 0.5
    assert abs(check.spam_rate_diff) < 0.1
    assert check.ks_statistic is not None and check.ks_statistic < check.ks_critical
    assert check.queries == 12  # six per side


def test_a_canary_that_flags_far_more_spam_fails_on_the_spam_rate(fleet, traffic, prometheus):
    _route(traffic, prometheus, fleet["spammy"], 50)

    check = _check(prometheus, fleet["stable"], fleet["spammy"])

    assert check.verdict == "fail", check.summary()
    assert check.spam_rate_diff > 0.1
    assert any("spam-rate difference" in r for r in check.reasons)
    assert "spam rate" in check.summary() and "requests" in check.summary()


def test_a_canary_that_answers_errors_fails_on_the_success_rate(fleet, traffic, prometheus):
    """Its predictor refuses the damaged artifact: 503 for every request, none in its own histogram."""
    _route(traffic, prometheus, fleet["broken"], 50)

    check = _check(prometheus, fleet["stable"], fleet["broken"])

    assert check.verdict == "fail", check.summary()
    assert check.canary.success_rate == 0.0 and check.canary.routed >= 20
    assert check.canary.requests < 20  # the predictor itself counted none: not "inconclusive" for that
    assert "canary success rate 0.000 < 0.99" in check.reasons


def test_no_traffic_is_inconclusive_never_a_pass(fleet, traffic, prometheus):
    driver, _ = traffic
    driver.paused.set()
    try:
        _a_full_window_since_now(prometheus)
        check = _check(prometheus, fleet["stable"], fleet["same"])
    finally:
        driver.paused.clear()

    assert check.verdict == "inconclusive"
    assert any("had 0 requests (< 20)" in r for r in check.reasons), check.reasons


def test_an_unreachable_prometheus_is_inconclusive_with_a_clear_reason(fleet):
    url = f"http://127.0.0.1:{free_port()}"

    check = run_check(Prometheus(url), Queries(), Thresholds(), fleet["stable"], fleet["same"], "8s")

    assert check.verdict == "inconclusive"
    (reason,) = check.reasons  # the OS's own wording of the refusal sits between the parentheses
    assert reason.startswith(f"Prometheus {url} is unreachable (") and reason.endswith(
        "); check --prometheus / rollout.prometheus_url"
    ), reason


def test_at_100_percent_the_stable_side_is_the_one_the_previous_check_measured(fleet, traffic, prometheus):
    """The last step sends the stable side nothing: its spam rate and distribution come from the step before."""
    _route(traffic, prometheus, fleet["same"], 50)
    before = _check(prometheus, fleet["stable"], fleet["same"])
    assert before.verdict == "pass", before.summary()
    _route(traffic, prometheus, fleet["same"], 100)

    alone = _check(prometheus, fleet["stable"], fleet["same"])
    check = run_check(
        Prometheus(prometheus.url), Queries(), Thresholds(), fleet["stable"], fleet["same"], f"{WINDOW}s",
        reference=before.stable,
    )  # fmt: skip

    assert alone.verdict == "inconclusive" and any(
        f"stable {fleet['stable']} had 0 requests" in r for r in alone.reasons
    )
    assert check.verdict == "pass", check.summary()
    assert check.stable_reference and check.stable is before.stable
    assert check.canary.requests >= 20 and abs(check.spam_rate_diff) < 0.1
    assert "(stable as measured at the previous step)" in check.summary()
