"""The quality gate: every rule reported with its measured value, threshold and verdict.

Accuracy alone lets an always-ham model through (about 85% of SMS are ham), so
the gate also demands spam F1 and recall, a margin over the majority-class
baseline, and no regression against the production champion.

The champion comparison runs on two sets of held-out rows: the challenger's own
and the champion's (its stored snapshot).  On the challenger's rows alone a model
trained on unrelated data passes trivially (the champion has never seen that kind
of data); on the champion's rows it must show it still does production's job.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from spamops.config import GateConfig
from spamops.records import Comparison, GateRecord, Metrics, RuleRecord

_WHOSE_ROWS = {"challenger": "the challenger's", "champion": "production's"}


def table(gate: GateRecord) -> str:
    """A readable table of the gate's rules, for terminals and the report."""
    rows = [(r.rule, _fmt(r.measured), _fmt(r.threshold), "pass" if r.passed else "FAIL", r.detail) for r in gate.rules]
    verdict = "PASSED" if gate.passed else "REFUSED"
    body = tabulate(
        rows,
        headers=("rule", "measured", "threshold", "verdict", "detail"),
        tablefmt="github",
        disable_numparse=True,
    )
    return f"{body}\n\ngate: {verdict}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _at_least(rule: str, measured: float, threshold: float, what: str) -> RuleRecord:
    ok = measured >= threshold
    word = "reaches" if ok else "is below"
    return RuleRecord(
        rule=rule,
        measured=measured,
        threshold=threshold,
        passed=ok,
        detail=f"{what} {measured:.4f} {word} {threshold:.4f}",
    )


def _no_number(rule: str, detail: str) -> RuleRecord:
    return RuleRecord(rule=rule, measured=None, threshold=None, passed=True, detail=detail)


def decide(
    metrics: Metrics, cfg: GateConfig, comparisons: Sequence[Comparison] = (), *, itself: bool = False
) -> GateRecord:
    """Apply every rule to the challenger's held-out ``metrics``.

    ``comparisons`` are challenger and production champion scored on the same rows,
    one per set of held-out rows (empty when nothing is in production yet); each must
    show no regression beyond ``champion_tolerance``.  ``itself`` says the version
    judged *is* production, so there is nothing to compare it with.
    """
    baseline = metrics.baseline_accuracy
    rules = [
        _at_least("min_accuracy", metrics.accuracy, cfg.min_accuracy, "accuracy"),
        _at_least("min_spam_f1", metrics.spam_f1, cfg.min_spam_f1, "spam F1"),
        _at_least("min_spam_recall", metrics.spam_recall, cfg.min_spam_recall, "spam recall"),
        _at_least(
            "beats_baseline",
            metrics.accuracy,
            baseline + cfg.min_baseline_margin,
            f"accuracy vs always-ham baseline {baseline:.4f} + margin {cfg.min_baseline_margin:.4f}:",
        ),
    ]
    metric = cfg.primary_metric
    if itself:
        rules.append(_no_number("champion", "this version is production: comparing production with itself"))
    elif not comparisons:
        rules.append(_no_number("champion", "no production model yet; nothing to compare"))
    for c in () if itself else comparisons:
        theirs = getattr(c.champion, metric)
        rules.append(
            _at_least(
                f"champion_on_{c.rows}_rows",
                getattr(c.challenger, metric),
                theirs - cfg.champion_tolerance,
                f"{metric} on {_WHOSE_ROWS[c.rows]} {c.challenger.rows} held-out rows vs champion "
                f"{theirs:.4f} - tolerance {cfg.champion_tolerance:.4f}:",
            )
        )
    return GateRecord.of(rules)
