"""One canary check: measure both sides in Prometheus, hand the counts to the judge.

Measuring is this module, deciding is :func:`spamops.deploy.judge.decide`, acting is
:mod:`spamops.deploy.rollout`.  Every count is exact over its window
(:mod:`spamops.evidence`: raw samples, counter resets handled), per version:

* requests and 5xx answers - the success-rate provider's counters
  (``rollout.analysis.success_rate``; the default ``predictor`` preset is the predictor's own
  ``spamops_inference_responses_total{code}``, joined to a version through
  ``spamops_model_info`` on the scrape address);
* predict latency per request - ``spamops_predict_latency_seconds`` (sub-millisecond buckets;
  KServe's ``request_predict_seconds`` starts at 5 ms, where every predict of this model falls
  into the first bucket);
* scored instances by label - ``spamops_predictions_total``;
* spam probability per instance - ``spamops_spam_probability`` buckets.

Two windows: the canary's step (from the last weight change, for the absolute floors) and
the rollout (from the canary's start, both sides, for the comparisons).  Anything that goes
wrong while measuring - Prometheus down, a query refused, an answer that does not parse -
makes the check *undecided* with the error recorded, never a crash that leaves the weight
mid-way without a record.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from spamops import evidence as ev
from spamops import names
from spamops.config import SuccessRateSource, fill
from spamops.deploy import judge
from spamops.errors import BadInputError
from spamops.prometheus import PrometheusError

INFO = names.MODEL_INFO
LATENCY = names.PREDICT_LATENCY
PREDICTIONS = names.PREDICTIONS_TOTAL
PROBABILITY = names.SPAM_PROBABILITY
VERDICT_WORDS = {"inconclusive": "undecided"}  # verdict words of earlier builds, in records and -o json


def verdict_word(word: str | None) -> str | None:
    """Today's word for a verdict an earlier build recorded (``inconclusive`` is ``undecided`` now)."""
    return VERDICT_WORDS.get(word, word) if word else word


@dataclass(frozen=True)
class Windows:
    """Unix times: the rollout's start, the current step's start (last weight change), now."""

    rollout_start: float
    step_start: float
    now: float

    def to_json(self) -> dict:
        return {
            "rollout_seconds": round(self.now - self.rollout_start, 1),
            "step_seconds": round(self.now - self.step_start, 1),
        }


@dataclass
class Check:
    """A check: the verdict, the counts behind it, and what measuring cost."""

    verdict: judge.Verdict
    evidence: judge.Evidence
    windows: Windows | None = None
    seconds: float = 0.0
    queries: int = 0
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        return self.verdict.summary()

    def to_json(self) -> dict:
        e = self.evidence
        return {
            **self.verdict.to_json(),
            "evidence": {
                "canary_step": e.canary_step.to_json(),
                "canary": e.canary.to_json(),
                "stable": e.stable.to_json(),
            },
            "windows": self.windows.to_json() if self.windows else None,
            "seconds": round(self.seconds, 4),
            "queries": self.queries,
        }


def _versions_regex(*versions: str) -> str:
    return "|".join(v.replace(".", r"\\.") for v in versions)


def _histogram(by_le: dict[str, float]) -> judge.Histogram:
    return judge.histogram((math.inf if le == "+Inf" else float(le), c) for le, c in by_le.items())


def gather(prom, source: SuccessRateSource, stable: str, canary: str, w: Windows) -> judge.Evidence:
    """Both sides' counts over both windows (raises whatever the queries raise)."""
    both = _versions_regex(stable, canary)
    starts = {"step": w.step_start, "rollout": w.rollout_start}
    fields: dict[tuple[str, str], dict] = {(v, win): {} for v in (stable, canary) for win in starts}
    missing: dict[str, dict[str, str]] = {stable: {}, canary: {}}

    def per_version(series: list[ev.Series], key, name: str, attr: str, of: tuple[str, ...] = (stable, canary)) -> None:
        present = {key(s.labels)[0] for s in series if key(s.labels) is not None}
        for window, start in starts.items():
            counts = ev.group(series, start, (), end=w.now, key=key)
            for version in of:
                if version not in present:
                    fields[(version, window)][attr] = None
                    missing[version][attr] = f"no {name} series"
                    continue
                fields[(version, window)][attr] = {k[1:]: v for k, v in counts.items() if k[0] == version}

    # requests and 5xx answers: the provider's counters
    requests, errors, join = source.selectors()
    hosts = ev.versions(prom, w.rollout_start, w.now, info=INFO) if join else ev.Addresses(())
    for attr, template in (("requests", requests), ("errors", errors)):
        if join:
            series = ev.fetch(prom, template, w.rollout_start, w.now)

            def key(labels, _join=join):
                version = hosts.version(labels.get(_join))
                return None if version is None else (version,)

            per_version(series, key, template, attr)
        else:
            for version in (stable, canary):
                selector = fill(template, {"version": version})
                series = ev.fetch(prom, selector, w.rollout_start, w.now)
                per_version(series, lambda labels, _v=version: (_v,), selector, attr, (version,))
    if join and canary not in hosts.values():
        missing[canary]["requests"] = f"no {INFO} series names it (is its predictor scraped?)"
    for attr in ("requests", "errors"):
        for key_ in fields:
            value = fields[key_].get(attr)
            if isinstance(value, dict):
                fields[key_][attr] = sum(value.values())
    # A version whose requests are counted but that never answered 5xx has no 5xx series: none failed.
    for key_, f in fields.items():
        if f.get("requests") is not None and f.get("errors") is None:
            f["errors"] = 0.0
            missing[key_[0]].pop("errors", None)

    def labelled(metric: str, label: str, attr: str) -> None:
        series = ev.fetch(prom, f'{metric}{{{names.LABEL_MODEL_VERSION}=~"{both}"}}', w.rollout_start, w.now)

        def key(labels):
            return (labels.get(names.LABEL_MODEL_VERSION, ""), labels.get(label, ""))

        per_version(series, key, metric, attr)

    labelled(f"{LATENCY}_bucket", "le", "latency")
    labelled(PREDICTIONS, "label", "predictions")
    labelled(f"{PROBABILITY}_bucket", "le", "probability")

    def side(version: str, window: str) -> judge.Side:
        f = fields[(version, window)]
        predictions = f.get("predictions")
        latency, probability = f.get("latency"), f.get("probability")
        return judge.Side(
            version,
            requests=f.get("requests"),
            errors=f.get("errors"),
            latency=None if latency is None else _histogram({k[0]: v for k, v in latency.items()}),
            instances=None if predictions is None else sum(predictions.values()),
            spam=None if predictions is None else predictions.get(("spam",), 0.0),
            probability=None if probability is None else _histogram({k[0]: v for k, v in probability.items()}),
            missing={**_signals_of(missing[version])},
        )

    return judge.Evidence(
        canary_step=side(canary, "step"), canary=side(canary, "rollout"), stable=side(stable, "rollout")
    )


def _signals_of(missing: dict[str, str]) -> dict[str, str]:
    """Field-level reasons, keyed as the judge looks them up (by field)."""
    out = dict(missing)
    if "predictions" in missing:
        out["instances"] = out["spam"] = missing["predictions"]
    return out


def refuse_bad_selectors(prom, source: SuccessRateSource, versions: tuple[str, ...]) -> None:
    """Before anything is routed: a custom selector that Prometheus itself refuses is bad input (exit 2).

    Only when Prometheus answers: an unreachable one is the checks' business (undecided, retried).
    """
    if source.provider != "custom":
        return
    for name in ("requests", "errors"):
        for version in versions:
            selector = fill(getattr(source, name), {"version": version})
            try:
                prom.vector(f"count({selector})")
            except PrometheusError as exc:
                if "refused" in str(exc) or "bad_data" in str(exc):
                    raise BadInputError(f"rollout.analysis.success_rate.{name} {selector!r}: {exc}") from None
                return


def run_check(
    prom, source: SuccessRateSource, settings: judge.Settings, stable: str, canary: str, windows: Windows
) -> Check:
    """Measure and decide; any error while measuring is an undecided check that says what went wrong."""
    started, before = time.perf_counter(), prom.queries
    try:
        evidence = gather(prom, source, stable, canary, windows)
    except Exception as exc:  # noqa: BLE001 - a check never crashes the loop mid-rollout (docs/rollout.md)
        message = (
            str(exc)
            if exc.__class__.__name__ == "PrometheusError"
            else f"measuring failed: {type(exc).__name__}: {exc}"
        )
        evidence = judge.Evidence(judge.Side(canary), judge.Side(canary), judge.Side(stable), error=message)
    verdict = judge.decide(evidence, settings)
    return Check(verdict, evidence, windows, time.perf_counter() - started, prom.queries - before)
