"""One canary check: measure both sides in Prometheus, compare, decide.

Sides are told apart by the ``model_version`` label the predictor exports.
KServe's ``request_predict_seconds`` histogram carries only ``model_name``, so
it is joined to ``spamops_model_info`` on the scrape ``instance`` (one predictor
process serves one version).  Signals per side over the last ``interval``:

* request count (minimum per side, else the check is *inconclusive*, never a pass -
  Flagger counts "no data" as a failure, which aborts idle canaries at night);
* success rate (the data plane's request counter, a PromQL template in config) - judged
  on the data plane's count of routed requests, so a canary answering only errors
  fails on it instead of looking idle (its own histogram counts no requests);
* p99 latency from the ``request_predict_seconds`` buckets;
* spam rate (``spamops_predictions_total``) - canary minus stable;
* the spam-probability distributions (``spamops_spam_probability`` buckets):
  two-sample Kolmogorov-Smirnov statistic *D* on the binned CDFs.  KS is
  chosen because its null distribution is known, so the threshold can follow
  the sample size: a shift fails only when *D* exceeds both the critical value
  at alpha = 0.001 (``1.95 * sqrt((n+m)/(n*m))``: at most one false abort in a
  thousand healthy checks) and ``max_probability_shift`` (0.10 by default, an
  effect size worth stopping for - below it, large volumes would abort on
  differences no user notices).  Binning into 0.05-wide buckets can only lower
  *D*, so the test stays conservative.

At the last step (canary at 100 %) the stable side gets no requests, so its
comparative signals (spam rate, distribution) come from the *reference*: the
stable side as measured at the previous check, carried in the rollout state.
Without it a 100 % step could never pass - it would be inconclusive until the
limit aborted a healthy canary.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields

from spamops.config import AnalysisConfig
from spamops.prometheus import Prometheus, PrometheusError

KS_C_ALPHA = 1.95  # c(alpha) for alpha = 0.001, two-sample KS


_DEFAULTS = AnalysisConfig()


@dataclass(frozen=True)
class Thresholds:
    """What a passing check needs: the ``rollout.analysis`` settings of the same names, defaults included."""

    min_requests: int = _DEFAULTS.min_requests
    min_success_rate: float = _DEFAULTS.min_success_rate
    max_p99_seconds: float = _DEFAULTS.max_p99_seconds
    max_spam_rate_diff: float = _DEFAULTS.max_spam_rate_diff
    max_probability_shift: float = _DEFAULTS.max_probability_shift

    @classmethod
    def from_config(cls, analysis: AnalysisConfig) -> Thresholds:
        return cls(**{f.name: getattr(analysis, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Queries:
    """PromQL templates; ``{version}`` and ``{window}`` are filled in per side."""

    requests: str = (
        "sum(increase(request_predict_seconds_count[{window}]) * on(instance) group_left(model_version) "
        'max by (instance, model_version) (spamops_model_info{{model_version="{version}"}}))'
    )
    # "or vector(0)": with every request failed the numerator has no series, and the ratio would be
    # empty (no signal) instead of 0 - exactly when it matters most.
    success_rate: str = (
        '(sum(increase(spamops_gateway_requests_total{{model_version="{version}",code!~"5.."}}[{window}])) '
        "or vector(0)) / "
        'sum(increase(spamops_gateway_requests_total{{model_version="{version}"}}[{window}]))'
    )
    # What the data plane routed to the side, answered or not: the count behind the success rate.
    routed: str = 'sum(increase(spamops_gateway_requests_total{{model_version="{version}"}}[{window}]))'
    p99: str = (
        "histogram_quantile(0.99, sum by (le) (increase(request_predict_seconds_bucket[{window}]) * on(instance) "
        'group_left(model_version) max by (instance, model_version) (spamops_model_info{{model_version="{version}"}})))'
    )
    predictions: str = 'sum by (label) (increase(spamops_predictions_total{{model_version="{version}"}}[{window}]))'
    probability: str = 'sum by (le) (increase(spamops_spam_probability_bucket{{model_version="{version}"}}[{window}]))'


@dataclass
class Side:
    """What Prometheus says about one version over the window."""

    version: str
    requests: float = 0.0
    routed: float | None = None  # requests the data plane sent it (a failing predictor counts none itself)
    success_rate: float | None = None
    p99_seconds: float | None = None
    instances: float = 0.0
    spam_rate: float | None = None
    cdf: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative count)


@dataclass
class Check:
    """One check's verdict: ``pass``, ``fail`` or ``inconclusive``, with the values behind it."""

    verdict: str
    reasons: list[str]
    stable: Side | None = None
    canary: Side | None = None
    spam_rate_diff: float | None = None
    ks_statistic: float | None = None
    ks_critical: float | None = None
    seconds: float = 0.0
    queries: int = 0
    stable_reference: bool = False  # the stable side is the previous check's (the canary takes all traffic)

    def summary(self) -> str:
        parts = []
        if self.canary and self.stable:
            c, s = self.canary, self.stable
            parts.append(f"requests {c.requests:.0f}/{s.requests:.0f}")
            if c.success_rate is not None:
                parts.append(f"success {c.success_rate:.3f}/{_fmt(s.success_rate)}")
            if c.p99_seconds is not None:
                parts.append(f"p99 {c.p99_seconds * 1000:.0f}ms/{_fmt(s.p99_seconds, 1000, 'ms')}")
            if self.spam_rate_diff is not None:
                parts.append(f"spam rate {_fmt(c.spam_rate)}/{_fmt(s.spam_rate)} (diff {self.spam_rate_diff:+.3f})")
            if self.ks_statistic is not None:
                parts.append(f"KS D {self.ks_statistic:.3f} (critical {self.ks_critical:.3f})")
        text = " (canary/stable) ".join([", ".join(parts)]) if parts else ""
        if text and self.stable_reference:
            text += " (stable as measured at the previous step)"
        return "; ".join(x for x in [text, *self.reasons] if x)

    def to_json(self) -> dict:
        return asdict(self)


def _fmt(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * scale:.{0 if unit else 3}f}{unit}"


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def measure(prom: Prometheus, queries: Queries, version: str, window: str) -> Side:
    """Query one side (raises :class:`PrometheusError`)."""
    side = Side(version=version)
    fill = {"version": version, "window": window}
    side.requests = _finite(prom.scalar(queries.requests.format(**fill))) or 0.0
    side.success_rate = _finite(prom.scalar(queries.success_rate.format(**fill)))
    side.routed = _finite(prom.scalar(queries.routed.format(**fill))) if queries.routed else None
    side.p99_seconds = _finite(prom.scalar(queries.p99.format(**fill)))
    by_label = {labels.get("label"): value for labels, value in prom.vector(queries.predictions.format(**fill))}
    side.instances = sum(by_label.values())
    if side.instances > 0:
        side.spam_rate = by_label.get("spam", 0.0) / side.instances
    buckets = [
        (float(labels["le"]), value)
        for labels, value in prom.vector(queries.probability.format(**fill))
        if "le" in labels
    ]
    side.cdf = sorted(buckets)
    return side


def ks_binned(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(D, n, m) for two cumulative bucket lists with the same bounds; ``None`` if either is empty."""
    if not a or not b:
        return None
    ca, cb = dict(a), dict(b)
    n, m = ca.get(math.inf) or max(ca.values()), cb.get(math.inf) or max(cb.values())
    if n <= 0 or m <= 0:
        return None
    bounds = sorted(set(ca) | set(cb))
    d = max(abs(ca.get(le, 0.0) / n - cb.get(le, 0.0) / m) for le in bounds)
    return d, n, m


def compare(stable: Side, canary: Side, t: Thresholds) -> Check:
    """The verdict from two measured sides (pure: the tests feed it real measurements)."""
    reasons: list[str] = []
    for side, name in ((canary, "canary"), (stable, "stable")):
        if side.requests < t.min_requests:
            reasons.append(f"{name} {side.version} had {side.requests:.0f} requests (< {t.min_requests})")
    check = Check(verdict="inconclusive", reasons=reasons, stable=stable, canary=canary)
    # A canary answering errors never reaches its own request histogram: judge its success rate on
    # what the data plane routed to it, even when the predictor counted too few requests.
    erroring = (
        canary.success_rate is not None
        and canary.success_rate < t.min_success_rate
        and (canary.routed or 0) >= t.min_requests
    )
    if reasons and not erroring:
        return check
    failures = []
    if canary.success_rate is not None and canary.success_rate < t.min_success_rate:
        failures.append(f"canary success rate {canary.success_rate:.3f} < {t.min_success_rate}")
    if reasons:  # the other signals need the predictor's own counts
        check.verdict, check.reasons = "fail", failures
        return check
    if canary.p99_seconds is not None and canary.p99_seconds > t.max_p99_seconds:
        failures.append(f"canary p99 {canary.p99_seconds:.3f}s > {t.max_p99_seconds}s")
    if canary.spam_rate is not None and stable.spam_rate is not None:
        check.spam_rate_diff = canary.spam_rate - stable.spam_rate
        if abs(check.spam_rate_diff) > t.max_spam_rate_diff:
            failures.append(f"spam-rate difference {check.spam_rate_diff:+.3f} beyond ±{t.max_spam_rate_diff}")
    ks = ks_binned(stable.cdf, canary.cdf)
    if ks is not None:
        d, n, m = ks
        check.ks_statistic, check.ks_critical = d, KS_C_ALPHA * math.sqrt((n + m) / (n * m))
        if d > max(check.ks_critical, t.max_probability_shift):
            failures.append(
                f"spam-probability distributions differ (KS D {d:.3f} > {max(check.ks_critical, t.max_probability_shift):.3f})"
            )
    check.verdict = "fail" if failures else "pass"
    check.reasons = failures
    return check


def side_to_json(side: Side) -> dict:
    """A side as plain JSON (the rollout state annotation): the +Inf bucket bound as Prometheus writes it."""
    doc = asdict(side)
    doc["cdf"] = [["+Inf" if math.isinf(le) else le, count] for le, count in side.cdf]
    return doc


def side_from_json(doc: dict) -> Side:
    cdf = [(math.inf if le == "+Inf" else float(le), float(count)) for le, count in doc.get("cdf", [])]
    return Side(**{**doc, "cdf": cdf})


def run_check(
    prom: Prometheus,
    queries: Queries,
    t: Thresholds,
    stable: str,
    canary: str,
    window: str,
    *,
    reference: Side | None = None,
) -> Check:
    """Measure both sides and compare; Prometheus failing makes the check inconclusive, never a pass.

    ``reference``: the stable side of an earlier check, compared against when the
    stable side had too few requests this window because the canary takes all traffic.
    """
    started, before = time.perf_counter(), prom.queries
    try:
        s, c = measure(prom, queries, stable, window), measure(prom, queries, canary, window)
        substitute = reference is not None and reference.version == stable and s.requests < t.min_requests
        check = compare(reference if substitute and reference is not None else s, c, t)
        check.stable_reference = substitute
    except PrometheusError as exc:
        check = Check(verdict="inconclusive", reasons=[str(exc)])
    check.seconds = time.perf_counter() - started
    check.queries = prom.queries - before
    return check
