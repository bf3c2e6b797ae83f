"""The canary judge: ``decide(evidence, settings) -> Verdict``, pure (no I/O, no clock).

Querying is :mod:`spamops.deploy.analysis`, acting is :mod:`spamops.deploy.rollout`; this
module only turns counts into a verdict, so every branch is unit-tested with plain numbers
and the benchmark (``scripts/bench_judge.py``) runs the same function on simulated traffic.

Evidence is counts, with explicit units: **requests** for the success rate and latency,
**instances** (scored rows; a request carries one or more) for the model-level signals.
Two windows: the canary's *step* window (from the last weight change: the absolute floors,
which depend on load) and the *rollout* window of both sides (from the canary's start: the
comparisons, whose samples are exchangeable whatever the weight - and which keep the stable
side's evidence when the canary takes 100 %).

Every test is sequential and **always valid**: its false-rejection probability is at most its
α however often it is looked at (Ville's inequality for a nonnegative supermartingale), so the
loop may check every interval, extend a step, or be driven by a CronJob at any period.  The
rollout's budget ``alpha`` is split evenly (Bonferroni) over the tests a rollout can run: the
comparisons once, the floors once per step.  docs/rollout.md derives each boundary.

Signals (``SIGNALS``), each ``pass`` / ``fail`` / ``undecided`` (``warn`` for a calibration-only
shift), with its value, threshold, sample size and always-valid p-value:

* ``success_rate`` (floor, requests, step): exact one-sided Bernoulli mixture test of
  "error share ≤ 1 - min_success_rate";
* ``latency`` (floor, requests, step): the same test on the share of requests slower than
  ``max_latency_seconds`` against ``1 - latency_quantile`` (the quantile is at most the ceiling
  exactly when at most that share exceeds it);
* ``success_vs_stable`` (comparison, requests): normal-mixture mSPRT on the difference of error
  shares (canary worse);
* ``latency_vs_stable`` (comparison, requests): the Bernoulli test on the canary's share slower
  than ``max_latency_ratio`` x the stable side's quantile;
* ``spam_rate`` (comparison, instances): normal-mixture mSPRT confidence sequence on the
  difference of spam shares, fails when it leaves ``±spam_rate_tolerance``;
* ``distribution`` (comparison, instances): a lower confidence bound on the Wasserstein-1
  distance (probability units) between the spam-probability distributions, from the mean
  difference's confidence sequence and a time-uniform DKW band; beyond
  ``probability_shift_tolerance`` it fails only if the spam share moved too (or
  ``calibration_shift: abort``), else it *warns*: the answers' labels did not change.

A comparison's rejection aborts at once; a floor's failure is a *failed check* the loop counts
against ``threshold`` over the rollout (Flagger).  A required signal without data is
``undecided`` with the reason, never skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from scipy.special import betaincc, betaln

Histogram = tuple[tuple[float, float], ...]  # cumulative (le, count), ascending, ending at +Inf
Status = Literal["pass", "fail", "undecided", "warn", "skipped"]
Unit = Literal["requests", "instances"]

FLOORS = ("success_rate", "latency")
COMPARISONS = ("success_vs_stable", "latency_vs_stable", "spam_rate", "distribution")
SIGNALS = FLOORS + COMPARISONS
UNITS: dict[str, Unit] = {
    "success_rate": "requests",
    "latency": "requests",
    "success_vs_stable": "requests",
    "latency_vs_stable": "requests",
    "spam_rate": "instances",
    "distribution": "instances",
}
# Mixture scales: the effect sizes each test is tuned to (docs/rollout.md, "Choosing the mixtures").
FLOOR_PRIOR_MEAN = 5.0  # Bernoulli tests: prior mean of the excess share, in multiples of the null share
TAU_ERROR_DIFF = 0.01  # success_vs_stable: one point of error share
TAU_SPAM_RATE = 0.02  # spam_rate: two points of spam share
TAU_MEAN_PROBABILITY = 0.02  # distribution: two points of mean spam probability


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Side:
    """What one version counted over one window; ``None`` = no series (``missing`` says why)."""

    version: str
    requests: float | None = None  # inference requests answered (any status)
    errors: float | None = None  # of them, answered 5xx
    latency: Histogram | None = None  # predict latency per request, seconds
    instances: float | None = None  # rows scored
    spam: float | None = None  # of them, labelled spam
    probability: Histogram | None = None  # spam probability per instance
    missing: dict[str, str] = field(default_factory=dict)  # signal -> why its series is absent

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        for name in ("latency", "probability"):
            if doc[name] is not None:
                doc[name] = [["+Inf" if math.isinf(le) else le, c] for le, c in doc[name]]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Side:
        doc = dict(doc)
        for name in ("latency", "probability"):
            if doc.get(name) is not None:
                doc[name] = tuple((math.inf if le == "+Inf" else float(le), float(c)) for le, c in doc[name])
        return cls(**doc)


@dataclass(frozen=True)
class Evidence:
    """A check's inputs: the canary over its step, both sides over the rollout."""

    canary_step: Side
    canary: Side
    stable: Side
    error: str | None = None  # measuring failed (Prometheus down, a query error): nothing is decided


@dataclass(frozen=True)
class Settings:
    """The judge's settings; built from ``rollout.analysis`` (:meth:`from_config`), where the defaults live."""

    alpha: float
    steps: int
    min_requests: int
    min_instances: int
    min_success_rate: float
    latency_quantile: float
    max_latency_seconds: float
    max_latency_ratio: float
    spam_rate_tolerance: float
    probability_shift_tolerance: float
    calibration_shift: Literal["warn", "abort"]
    required: frozenset[str]

    @classmethod
    def from_config(cls, analysis, steps: int | None = None) -> Settings:
        """From an :class:`spamops.config.AnalysisConfig` (``steps`` defaults to its step weights)."""
        return cls(
            alpha=analysis.alpha,
            steps=steps if steps is not None else len(analysis.weights()),
            min_requests=analysis.min_requests,
            min_instances=analysis.min_instances,
            min_success_rate=analysis.min_success_rate,
            latency_quantile=analysis.latency_quantile,
            max_latency_seconds=analysis.max_latency_seconds,
            max_latency_ratio=analysis.max_latency_ratio,
            spam_rate_tolerance=analysis.spam_rate_tolerance,
            probability_shift_tolerance=analysis.probability_shift_tolerance,
            calibration_shift=analysis.calibration_shift,
            required=frozenset(analysis.required_signals),
        )

    @property
    def test_alpha(self) -> float:
        """Each test's share of the rollout's budget: comparisons once, floors once per step."""
        return self.alpha / (len(COMPARISONS) + len(FLOORS) * max(1, self.steps))


# ------------------------------------------------------------------ outputs
@dataclass(frozen=True)
class Signal:
    """One signal's verdict and the numbers behind it."""

    name: str
    status: Status
    kind: Literal["floor", "comparison"]
    unit: Unit
    value: float | None = None
    threshold: float | None = None
    canary_n: float | None = None
    stable_n: float | None = None
    p_value: float | None = None  # always-valid: P(a healthy canary ever looks this bad) <= p
    alpha: float | None = None
    low: float | None = None  # confidence bounds on the value, where the test gives them
    high: float | None = None
    reason: str = ""

    def line(self) -> str:
        """``name status value vs threshold (n units)`` for Events and the CLI."""
        n = _count(self.canary_n)
        if self.stable_n is not None:
            n += f"/{_count(self.stable_n)}"
        head = f"{self.name} {self.status}"
        if self.value is not None:
            head += f" {_num(self.value)}"
            if self.threshold is not None:
                head += f" vs {_num(self.threshold)}"
        head += f" ({n} {self.unit})" if self.canary_n is not None else ""
        return f"{head}: {self.reason}" if self.reason and self.status != "pass" else head


@dataclass(frozen=True)
class Verdict:
    """The check's outcome: ``pass`` (advance), ``fail`` (see ``rejected``/``floors_failed``), ``undecided`` (hold)."""

    verdict: Literal["pass", "fail", "undecided"]
    signals: tuple[Signal, ...]
    error: str | None = None

    @property
    def rejected(self) -> list[str]:
        """Comparisons a sequential test rejected: the rollout aborts at once."""
        return [s.name for s in self.signals if s.kind == "comparison" and s.status == "fail"]

    @property
    def floors_failed(self) -> list[str]:
        """Absolute floors failed in this check: each check with one counts against ``threshold``."""
        return [s.name for s in self.signals if s.kind == "floor" and s.status == "fail"]

    @property
    def undecided(self) -> list[Signal]:
        return [s for s in self.signals if s.status == "undecided"]

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    def summary(self) -> str:
        """One line: the signals that decided first, then the rest."""
        if self.error:
            return f"undecided: {self.error}"
        order = {"fail": 0, "undecided": 1, "warn": 2, "skipped": 3, "pass": 4}
        return "; ".join(s.line() for s in sorted(self.signals, key=lambda s: order[s.status]))

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "error": self.error, "signals": [asdict(s) for s in self.signals]}


# ------------------------------------------------------------------ statistics
def bernoulli_log_lr(n: float, k: float, p0: float, prior_mean: float) -> float:
    """log of the mixture likelihood ratio for "share > p0" after ``k`` of ``n`` (Robbins' mixture).

    The alternative mixes the Bernoulli likelihood over ``p ~ Beta(1, b)`` restricted to
    ``(p0, 1]`` (``b`` from ``prior_mean``).  Under any ``p <= p0`` each factor
    ``L(p')/L(p0)`` with ``p' > p0`` has expectation at most 1, so the ratio is a
    nonnegative supermartingale: rejecting when it reaches ``1/alpha`` is always valid.
    """
    if n <= 0:
        return 0.0
    k = min(max(k, 0.0), n)
    b = 1.0 / min(max(prior_mean, p0 * 1.0001), 0.5) - 1.0
    tail = betaincc(k + 1.0, n - k + b, p0)
    if tail <= 0.0:
        return -math.inf if k / n <= p0 else math.inf
    numerator = betaln(k + 1.0, n - k + b) + math.log(tail)
    prior = betaln(1.0, b) + math.log(betaincc(1.0, b, p0))
    return float(numerator - prior - k * math.log(p0) - (n - k) * math.log1p(-p0))


def mixture_half_width(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence for an estimate of variance ``variance``.

    With prior ``N(theta0, tau^2)`` on the effect, the mixture ratio is
    ``sqrt(V/(V+tau^2)) * exp(tau^2 (est-theta0)^2 / (2 V (V+tau^2)))``; it reaches ``1/alpha``
    exactly when ``|est - theta0|`` exceeds this half-width.
    """
    if variance <= 0:
        return 0.0
    t2 = tau * tau
    return math.sqrt(
        variance * (variance + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((variance + t2) / variance))
    )


def mixture_p_value(distance: float, variance: float, tau: float) -> float:
    """Always-valid p-value ``min(1, 1/ratio)`` of an estimate ``distance`` away from the null value."""
    if variance <= 0:
        return 1.0
    t2 = tau * tau
    log_ratio = 0.5 * math.log(variance / (variance + t2)) + t2 * distance * distance / (2 * variance * (variance + t2))
    return min(1.0, math.exp(-log_ratio)) if log_ratio < 700 else 0.0


def dkw_radius(n: float, alpha: float) -> float:
    """Time-uniform DKW band: ``sup_x |F_n(x) - F(x)|`` stays below this for every n, w.p. >= 1 - alpha.

    Howard & Ramdas (2022), "Sequential estimation of quantiles with applications to
    A/B-testing and best-arm identification": ``0.85 sqrt((log log(e n) + 0.8 log(1612/alpha)) / n)``.
    """
    if n <= 0:
        return 1.0
    return min(1.0, 0.85 * math.sqrt((math.log(math.log(math.e * n)) + 0.8 * math.log(1612.0 / alpha)) / n))


def total(h: Histogram) -> float:
    return h[-1][1] if h else 0.0


def above(h: Histogram, bound: float) -> float:
    """How many observations exceeded the smallest bucket bound ``>= bound`` (a conservative count)."""
    for le, count in h:
        if le >= bound:
            return total(h) - count
    return 0.0


def quantile_bound(h: Histogram, q: float) -> float:
    """The upper bound of the bucket holding the ``q`` quantile (``inf`` if it is the overflow bucket)."""
    n = total(h)
    for le, count in h:
        if n > 0 and count >= q * n:
            return le
    return math.inf


def _masses(h: Histogram) -> list[tuple[float, float, float]]:
    """(lower, upper, share) per bucket of a probability histogram on [0, 1]."""
    n = total(h)
    out, lower, before = [], 0.0, 0.0
    for le, count in h:
        upper = min(le, 1.0)
        if n > 0 and count > before:
            out.append((lower, upper, (count - before) / n))
        lower, before = upper, count
    return out


def mean_and_variance(h: Histogram) -> tuple[float, float]:
    """Mean and variance of a [0, 1] histogram, each bucket's mass at its midpoint."""
    masses = _masses(h)
    mean = sum((lo + hi) / 2 * m for lo, hi, m in masses)
    return mean, max(0.0, sum(((lo + hi) / 2 - mean) ** 2 * m for lo, hi, m in masses))


def wasserstein(a: Histogram, b: Histogram) -> float:
    """W1 between two [0, 1] histograms with the same bounds: ``∫|F_a - F_b|`` over the bucket grid."""
    na, nb = total(a), total(b)
    if na <= 0 or nb <= 0:
        return 0.0
    cb = dict(b)
    w, lower = 0.0, 0.0
    for le, count in a:
        upper = min(le, 1.0)
        if upper > lower:
            w += (upper - lower) * abs(count / na - cb.get(le, 0.0) / nb)
        lower = upper
    return w


# ------------------------------------------------------------------ the decision
def decide(evidence: Evidence, settings: Settings) -> Verdict:
    """The verdict of one check (see the module docstring for what each signal tests)."""
    if evidence.error:
        signals = tuple(
            Signal(n, "undecided", _kind(n), UNITS[n], reason=evidence.error) for n in SIGNALS
        )  # fmt: skip
        return Verdict("undecided", signals, error=evidence.error)
    a = settings.test_alpha
    spam_rate = _spam_rate(evidence, settings, a)
    signals = tuple(
        _optional(s, settings)
        for s in (
            _success_floor(evidence.canary_step, settings, a),
            _latency_floor(evidence.canary_step, settings, a),
            _success_vs_stable(evidence, settings, a),
            _latency_vs_stable(evidence, settings, a),
            spam_rate,
            _distribution(evidence, settings, a, spam_rate),
        )
    )
    verdict: Literal["pass", "fail", "undecided"]
    if any(s.status == "fail" for s in signals):
        verdict = "fail"
    elif any(s.status == "undecided" for s in signals):
        verdict = "undecided"
    else:
        verdict = "pass"
    return Verdict(verdict, signals)


def _kind(name: str) -> Literal["floor", "comparison"]:
    return "floor" if name in FLOORS else "comparison"


def _optional(signal: Signal, settings: Settings) -> Signal:
    """A signal that is not required never holds the rollout: without data it is skipped, saying why."""
    if signal.name in settings.required or signal.status != "undecided":
        return signal
    return replace(signal, status="skipped")


def _missing(side: Side, field_name: str, signal: str, role: str) -> str | None:
    if getattr(side, field_name) is None:
        why = side.missing.get(signal) or side.missing.get(field_name) or "no series"
        return f"{role} {side.version}: {why}"
    return None


def _success_floor(side: Side, s: Settings, alpha: float) -> Signal:
    base = Signal(
        name="success_rate",
        status="undecided",
        kind="floor",
        unit="requests",
        threshold=s.min_success_rate,
        alpha=alpha,
    )
    why = _missing(side, "requests", "success_rate", "canary") or _missing(side, "errors", "success_rate", "canary")
    if why:
        return replace(base, reason=why)
    n, k = side.requests, side.errors
    assert n is not None and k is not None  # _missing checked both
    base = replace(base, canary_n=n, value=1.0 - k / n if n > 0 else None)
    if n < s.min_requests:
        return replace(base, reason=f"{_count(n)} requests this step (< min_requests {s.min_requests})")
    p0 = 1.0 - s.min_success_rate
    return _floor_test(base, n, k, p0, alpha, f"{_count(k)} of {_count(n)} requests answered 5xx")


def _floor_test(base: Signal, n: float, k: float, p0: float, alpha: float, what: str) -> Signal:
    if p0 <= 0:  # a floor of 100 %: any failure fails it, none cannot prove it
        status: Status = "fail" if k > 0 else "pass"
        return replace(base, status=status, p_value=0.0 if k > 0 else 1.0, reason=what)
    log_lr = bernoulli_log_lr(n, k, p0, FLOOR_PRIOR_MEAN * p0)
    p_value = min(1.0, math.exp(-log_lr)) if log_lr < 700 else 0.0
    if log_lr >= math.log(1.0 / alpha):
        return replace(
            base, status="fail", p_value=p_value, reason=f"{what}: beyond the floor (p {p_value:.2g} < {alpha:.2g})"
        )
    if k / n > p0:
        return replace(base, status="undecided", p_value=p_value, reason=f"{what}: below the floor, not yet conclusive")
    return replace(base, status="pass", p_value=p_value)


def _latency_floor(side: Side, s: Settings, alpha: float) -> Signal:
    base = Signal(
        name="latency",
        status="undecided",
        kind="floor",
        unit="requests",
        threshold=s.max_latency_seconds,
        alpha=alpha,
    )
    why = _missing(side, "latency", "latency", "canary")
    if why:
        return replace(base, reason=why)
    h = side.latency
    assert h is not None  # _missing checked it
    n = total(h)
    base = replace(base, canary_n=n, value=quantile_bound(h, s.latency_quantile) if n else None)
    if n < s.min_requests:
        return replace(base, reason=f"{_count(n)} timed requests this step (< min_requests {s.min_requests})")
    k = above(h, s.max_latency_seconds)
    p0 = 1.0 - s.latency_quantile
    return _floor_test(
        base, n, k, p0, alpha, f"{_count(k)} of {_count(n)} requests slower than {_num(s.max_latency_seconds)}s"
    )


def _two_sides(e: Evidence, fields: Sequence[str], signal: str, minimum: int, unit: str) -> str | None:
    for side, role in ((e.canary, "canary"), (e.stable, "stable")):
        for f in fields:
            why = _missing(side, f, signal, role)
            if why:
                return why
    n_c, n_s = _n(e.canary, fields[0]), _n(e.stable, fields[0])
    if n_c < minimum or n_s < minimum:
        name = "min_requests" if unit == "requests" else "min_instances"
        return f"{_count(n_c)}/{_count(n_s)} {unit} (canary/stable) in the rollout (< {name} {minimum})"
    return None


def _n(side: Side, f: str) -> float:
    value = getattr(side, f)
    return total(value) if isinstance(value, tuple) else float(value or 0.0)


def _success_vs_stable(e: Evidence, s: Settings, alpha: float) -> Signal:
    base = _sizes(
        Signal(
            name="success_vs_stable",
            status="undecided",
            kind="comparison",
            unit="requests",
            threshold=0.0,
            alpha=alpha,
        ),
        e,
        "requests",
    )
    why = _two_sides(e, ("requests", "errors"), "success_vs_stable", s.min_requests, "requests")
    if why:
        return replace(base, reason=why)
    nc, kc, ns, ks = e.canary.requests, e.canary.errors, e.stable.requests, e.stable.errors
    assert nc is not None and kc is not None and ns is not None and ks is not None  # _two_sides checked them
    diff = kc / nc - ks / ns  # error share, canary minus stable
    v = _share_variance(kc, nc) + _share_variance(ks, ns)
    h = mixture_half_width(v, TAU_ERROR_DIFF, alpha)
    base = replace(base, value=diff, low=diff - h, high=diff + h)
    p = mixture_p_value(diff, v, TAU_ERROR_DIFF) if diff > 0 else 1.0
    if diff - h > 0:
        return replace(
            base,
            status="fail",
            p_value=p,
            reason=f"canary error share {diff:+.4f} above stable's (p {p:.2g} < {alpha:.2g})",
        )
    return replace(base, status="pass", p_value=p)


def _latency_vs_stable(e: Evidence, s: Settings, alpha: float) -> Signal:
    base = _sizes(
        Signal(
            name="latency_vs_stable",
            status="undecided",
            kind="comparison",
            unit="requests",
            threshold=s.max_latency_ratio,
            alpha=alpha,
        ),
        e,
        "latency",
    )
    why = _two_sides(e, ("latency",), "latency_vs_stable", s.min_requests, "requests")
    if why:
        return replace(base, reason=why)
    canary, stable = e.canary.latency, e.stable.latency
    assert canary is not None and stable is not None  # _two_sides checked both
    stable_q = quantile_bound(stable, s.latency_quantile)
    canary_q = quantile_bound(canary, s.latency_quantile)
    base = replace(base, value=canary_q / stable_q if math.isfinite(stable_q) and stable_q > 0 else None)
    bound = s.max_latency_ratio * stable_q
    finite = [le for le, _ in stable if math.isfinite(le)]
    if not math.isfinite(stable_q) or not finite or bound > finite[-1]:
        return replace(base, reason="stable's quantile is beyond the histogram's buckets")
    n = total(canary)
    k = above(canary, bound)
    p0 = 1.0 - s.latency_quantile
    what = f"{_count(k)} of {_count(n)} canary requests slower than {_num(bound)}s ({_num(s.max_latency_ratio)} x stable's {_num(stable_q)}s)"
    signal = _floor_test(base, n, k, p0, alpha, what)
    if signal.status == "undecided":  # a comparison holds nothing on a hunch: only a rejection counts
        return replace(signal, status="pass")
    return signal


def _spam_rate(e: Evidence, s: Settings, alpha: float) -> Signal:
    tol = s.spam_rate_tolerance
    base = _sizes(
        Signal(name="spam_rate", status="undecided", kind="comparison", unit="instances", threshold=tol, alpha=alpha),
        e,
        "instances",
    )
    why = _two_sides(e, ("instances", "spam"), "spam_rate", s.min_instances, "instances")
    if why:
        return replace(base, reason=why)
    nc, kc, ns, ks = e.canary.instances, e.canary.spam, e.stable.instances, e.stable.spam
    assert nc is not None and kc is not None and ns is not None and ks is not None  # _two_sides checked them
    diff = kc / nc - ks / ns
    v = _share_variance(kc, nc) + _share_variance(ks, ns)
    h = mixture_half_width(v, TAU_SPAM_RATE, alpha)
    distance = max(0.0, abs(diff) - tol)
    p = mixture_p_value(distance, v, TAU_SPAM_RATE) if distance > 0 else 1.0
    base = replace(base, value=diff, low=diff - h, high=diff + h)
    if diff - h > tol or diff + h < -tol:
        return replace(
            base,
            status="fail",
            p_value=p,
            reason=f"spam share {kc / nc:.3f} vs {ks / ns:.3f}: moved beyond ±{tol:g} (p {p:.2g} < {alpha:.2g})",
        )
    return replace(base, status="pass", p_value=p)


def _distribution(e: Evidence, s: Settings, alpha: float, spam_rate: Signal) -> Signal:
    tol = s.probability_shift_tolerance
    base = _sizes(
        Signal(
            name="distribution", status="undecided", kind="comparison", unit="instances", threshold=tol, alpha=alpha
        ),
        e,
        "probability",
    )
    why = _two_sides(e, ("probability",), "distribution", s.min_instances, "instances")
    if why:
        return replace(base, reason=why)
    hc, hs = e.canary.probability, e.stable.probability
    assert hc is not None and hs is not None  # _two_sides checked both
    nc, ns = total(hc), total(hs)
    w = wasserstein(hc, hs)
    (mc, vc), (ms, vs) = mean_and_variance(hc), mean_and_variance(hs)
    v = vc / nc + vs / ns
    # Two lower bounds on W1, each at half the test's alpha: |mean difference| <= W1, and the DKW bands.
    mean_low = abs(mc - ms) - mixture_half_width(v, TAU_MEAN_PROBABILITY, alpha / 2)
    radius = dkw_radius(nc, alpha / 4) + dkw_radius(ns, alpha / 4)
    low = max(0.0, mean_low, w - radius)
    base = replace(base, value=w, low=low, high=min(1.0, w + radius))
    distance = max(0.0, abs(mc - ms) - tol)
    p = mixture_p_value(distance, v, TAU_MEAN_PROBABILITY) if distance > 0 else 1.0
    if low > tol:
        labels_moved = spam_rate.status == "fail"
        what = f"Wasserstein distance at least {low:.3f} (> {tol:g}) between the spam-probability distributions"
        if labels_moved or s.calibration_shift == "abort":
            why = "the share labelled spam moved too" if labels_moved else "calibration_shift: abort"
            return replace(base, status="fail", p_value=p, reason=f"{what}; {why}")
        return replace(
            base,
            status="warn",
            p_value=p,
            reason=f"{what}, but the share labelled spam did not move: a calibration-only shift",
        )
    return replace(base, status="pass", p_value=p)


def _sizes(base: Signal, e: Evidence, f: str) -> Signal:
    c = getattr(e.canary, f)
    st = getattr(e.stable, f)
    return replace(
        base,
        canary_n=None if c is None else _n(e.canary, f),
        stable_n=None if st is None else _n(e.stable, f),
    )


def _share_variance(k: float, n: float) -> float:
    """Variance of a share's estimate, with one pseudo-success and one pseudo-failure (never 0 at 0 or n)."""
    p = (k + 1.0) / (n + 2.0)
    return p * (1.0 - p) / n


def _count(x: float | None) -> str:
    return "?" if x is None else f"{x:.0f}"


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf"
    return f"{x:.4g}"


def histogram(pairs: Iterable[tuple[float, float]]) -> Histogram:
    """A cumulative histogram from ``(le, count)`` pairs in any order (+Inf added if absent)."""
    out = sorted((float(le), float(c)) for le, c in pairs)
    if out and not math.isinf(out[-1][0]):
        out.append((math.inf, out[-1][1]))
    return tuple(out)
