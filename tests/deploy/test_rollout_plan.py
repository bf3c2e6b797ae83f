"""What the analysis loop does after a check, and when it may decide at all (pure rules of deploy.rollout).

Counting follows Flagger: a failed floor is a failed check, cumulative over the rollout, and
``threshold`` of them abort; a comparison's sequential rejection aborts at once; undecided
checks hold the step up to ``undecided_deadline``, then abort (default) or pause.
"""

from __future__ import annotations

import pytest

from spamops.config import AnalysisConfig
from spamops.deploy.judge import Signal, Verdict
from spamops.deploy.rollout import plan, since_progress, too_soon

WEIGHTS = [10, 25, 50, 100]
T0 = 1_800_000_000.0


def verdict(kind: str) -> Verdict:
    """A verdict of one kind: ``pass``, ``floor`` (success floor failed), ``reject`` (spam rate) or ``undecided``."""
    status = {"pass": "pass", "floor": "fail", "reject": "pass", "undecided": "undecided"}[kind]
    signals = [
        Signal("success_rate", status, "floor", "requests", value=1.0, threshold=0.99, canary_n=100),
        Signal("spam_rate", "fail" if kind == "reject" else "pass", "comparison", "instances", canary_n=100),
    ]
    word = "fail" if kind in ("floor", "reject") else ("undecided" if kind == "undecided" else "pass")
    return Verdict(word, tuple(signals))


def run(kinds: list[str], a: AnalysisConfig, *, every: float = 60.0) -> list[tuple[str, int]]:
    """Feed checks ``every`` seconds through plan(), as the loop does; the actions and weights it takes."""
    state = {"started_at": T0, "step_started_at": T0, "failed": 0}
    weight, now, out = WEIGHTS[0], T0, []
    for kind in kinds:
        now += every
        p = plan(state, verdict(kind), WEIGHTS, weight, a, now)
        state["failed"] = p.failed
        out.append((p.action, weight))
        if p.action == "advance":
            weight, state["step_started_at"] = p.weight, now
        if p.action in ("abort", "promote", "pause"):
            break
    return out


def test_failed_checks_are_cumulative_over_the_rollout_not_reset_by_a_pass():
    """Was: with threshold 2, alternating fail/pass promoted after 4 failures in 8 checks."""
    actions = run(["floor", "pass", "floor", "pass", "floor", "pass", "floor", "pass"], AnalysisConfig(threshold=2))

    assert actions == [("hold", 10), ("advance", 10), ("abort", 25)]


def test_threshold_one_aborts_on_the_first_failed_floor():
    assert run(["floor"], AnalysisConfig()) == [("abort", 10)]


def test_a_sequential_rejection_aborts_at_once_whatever_the_threshold():
    assert run(["reject"], AnalysisConfig(threshold=5)) == [("abort", 10)]


def test_passing_checks_advance_step_by_step_and_promote_at_the_last():
    assert run(["pass"] * 4, AnalysisConfig()) == [("advance", 10), ("advance", 25), ("advance", 50), ("promote", 100)]


def test_undecided_holds_the_step_until_the_deadline_then_aborts():
    actions = run(["undecided"] * 20, AnalysisConfig(undecided_deadline=300))

    assert actions == [("hold", 10)] * 4 + [("abort", 10)]


def test_undecided_past_the_deadline_pauses_when_configured():
    actions = run(["undecided"] * 20, AnalysisConfig(undecided_deadline=120, on_undecided="pause"))

    assert actions == [("hold", 10), ("pause", 10)]


def test_the_undecided_deadline_counts_from_the_step_not_the_rollout():
    actions = run(["pass", "undecided", "undecided", "pass"], AnalysisConfig(undecided_deadline=150))

    assert actions == [("advance", 10), ("hold", 25), ("hold", 25), ("advance", 25)]


def test_messages_name_the_counts_and_the_deadline():
    a = AnalysisConfig(threshold=3, undecided_deadline=600)
    state = {"started_at": T0, "step_started_at": T0, "failed": 1}

    held = plan(state, verdict("floor"), WEIGHTS, 25, a, T0 + 60)
    waiting = plan(state, verdict("undecided"), WEIGHTS, 25, a, T0 + 90)

    assert held.message.startswith("failed check 2/3 (success_rate) at 25%: success_rate fail")
    assert waiting.message.startswith("undecided 90s of 600s at 25%: success_rate undecided")


def test_once_refuses_to_decide_before_an_interval_passed_at_the_current_weight():
    """Was: a CronJob period shorter than interval advanced on a window measured mostly at the previous weight."""
    state = {"started_at": T0 - 600, "step_started_at": T0}

    assert too_soon(state, 25, 60, T0 + 20) == "20s at 25% so far, less than interval 60s: not deciding yet"
    assert too_soon(state, 25, 60, T0 + 60) is None


def test_the_progress_deadline_counts_from_the_last_progress():
    """Was: counted from the rollout's start, so after 600 s any transient not-Ready aborted at once."""
    state = {"started_at": T0 - 3600, "step_started_at": T0 - 120, "progress_at": T0 - 30}

    assert since_progress(state, T0) == pytest.approx(30)
    assert since_progress({"started_at": T0 - 3600}, T0) == pytest.approx(3600)  # an earlier build's state
