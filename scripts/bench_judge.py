#!/usr/bin/env python3
"""Judge benchmark (not a test): simulated rollouts through the real canary judge, 10,000 per scenario.

Versions are trained here on the real data (``$SPAMOPS_REAL_DATA/smsspamcollection-1k.csv`` or
``--data``) by the ``spamops train`` CLI; each version's prediction (spam-probability bucket and
label) of every real message is what a request to it answers. A simulated rollout routes
``instances_per_interval`` messages per interval (all traffic to the InferenceService; one
message per request) drawn uniformly from the real messages, the canary's share following the
configured step weights, and runs each interval's check through the real judge
(``spamops.deploy.judge.decide``) and the real loop rules (``spamops.deploy.rollout.plan``), with
the default ``rollout.analysis`` settings. Latency per request is the same lognormal on both
sides (median 0.3 ms, the predictor's table lookup), bucketed like ``spamops_predict_latency_seconds``.

Scenarios: A/A (the stable version on both sides) at 200, 1,000 and 10,000 instances per
interval; the noisy-data model (60 % of ham relabelled spam); a canary answering 5 % of requests
5xx; one answering only 503; a canary whose spam recall is about 10 points lower (trained with
part of the spam relabelled ham), at several traffic levels; zero traffic. For the recall drop it
also prints the evidence a fixed-horizon two-proportion test of the same alpha and power needs.

Run against an earlier build (its ``src`` first on ``PYTHONPATH``), it simulates that build's
judge instead - per-interval ``analysis.compare`` with its loop's counters - for the "before"
column of docs/rollout.md.

Usage: python scripts/bench_judge.py [--rollouts 10000] [--seed 7] [--json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from spamops.config import AnalysisConfig  # noqa: E402
from spamops.deploy import analysis  # noqa: E402

NEW = hasattr(analysis, "gather")  # this build's judge; else an earlier build's analysis.compare
PROBABILITY_BOUNDS = np.array([round(i / 20, 2) for i in range(1, 21)])
LATENCY_BOUNDS = np.array(
    [0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
     0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5]
)  # fmt: skip
KSERVE_BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0])
INTERVAL = 60.0
MAX_INTERVALS = 60  # a rollout still running after this many intervals counts as undecided


# ------------------------------------------------------------------ versions from the real data
def _train(store: Path, work: Path, name: str, data: Path, seed: int) -> str:
    from spamops.cli import main

    config = work / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "train": {"seed": seed}, "data": {"sources": [str(data)]}}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", "--config", str(config), "--quiet", "--json", "--no-promote"])
    if code not in (0, 3):
        raise SystemExit(f"training {name} failed (exit {code})")
    return json.loads(out.getvalue())["version"]


def _relabelled(rows: list[dict], work: Path, name: str, source: str, target: str, share: float, seed: int) -> Path:
    rng = random.Random(seed)
    path = work / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "length", "punct"])
        writer.writeheader()
        for row in rows:
            label = target if row["label"] == source and rng.random() < share else row["label"]
            writer.writerow({"label": label, "length": row["length"], "punct": row["punct"]})
    return path


@dataclass
class Outcomes:
    """One version's answer to every real message: its probability bucket and label."""

    name: str
    bucket: np.ndarray  # index into PROBABILITY_BOUNDS per message
    spam: np.ndarray  # 1 where labelled spam
    recall: float

    def categories(self) -> np.ndarray:
        """Share of the messages per (bucket, label) category: 40 categories, label-major."""
        shares = np.zeros(2 * len(PROBABILITY_BOUNDS))
        np.add.at(shares, self.spam * len(PROBABILITY_BOUNDS) + self.bucket, 1.0)
        return shares / shares.sum()


def versions(data: Path, work: Path, log) -> dict[str, Outcomes]:
    import joblib

    rows = list(csv.DictReader(data.open()))
    x = np.array([[int(r["length"]), int(r["punct"])] for r in rows], dtype=float)
    truth = np.array([r["label"] == "spam" for r in rows])
    store = work / "store"

    def outcomes(name: str, version: str) -> Outcomes:
        model = joblib.load(store / "spam" / version / "model.joblib")
        probability = model.predict_proba(x)[:, 1]
        spam = (model.predict(x) == "spam") if model.classes_.dtype.kind in "OUS" else model.predict(x).astype(bool)
        bucket = np.searchsorted(PROBABILITY_BOUNDS, probability, side="left")
        return Outcomes(
            name, np.minimum(bucket, len(PROBABILITY_BOUNDS) - 1), spam.astype(int), float(spam[truth].mean())
        )

    started = time.perf_counter()
    found = {"stable": outcomes("stable", _train(store, work, "stable", data, 42))}
    noisy = _relabelled(rows, work, "noisy", "ham", "spam", 0.6, 3)
    found["noisy"] = outcomes("noisy", _train(store, work, "noisy", noisy, 42))
    # The recall-drop version: part of the spam relabelled ham; the share whose recall lands nearest 10 points lower.
    target = found["stable"].recall - 0.10
    best = None
    for share in (0.05, 0.1, 0.15, 0.2, 0.3):
        path = _relabelled(rows, work, f"recall-{share}", "spam", "ham", share, 5)
        candidate = outcomes("recall", _train(store, work, f"recall-{share}", path, 42))
        if best is None or abs(candidate.recall - target) < abs(best.recall - target):
            best = candidate
    found["recall"] = best
    log(
        f"trained in {time.perf_counter() - started:.0f}s: spam recall stable {found['stable'].recall:.3f}, "
        f"recall-drop {best.recall:.3f}, noisy {found['noisy'].recall:.3f}; spam share stable "
        f"{found['stable'].spam.mean():.3f}, recall-drop {best.spam.mean():.3f}, noisy {found['noisy'].spam.mean():.3f}"
    )
    return found


# ------------------------------------------------------------------ one scenario
@dataclass
class Scenario:
    name: str
    instances: int  # per interval, all traffic
    canary: str  # version key
    error_share: float = 0.0


@dataclass
class Result:
    name: str
    instances_per_interval: int
    rollouts: int
    promoted: int = 0
    aborted: int = 0
    undecided: int = 0
    intervals: list[int] = field(default_factory=list)
    decided_instances: list[float] = field(default_factory=list)
    canary_instances: list[float] = field(default_factory=list)  # at an abort: the canary's rollout evidence
    stable_instances: list[float] = field(default_factory=list)
    signals: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "instances_per_interval": self.instances_per_interval,
            "rollouts": self.rollouts,
            "promoted": self.promoted,
            "aborted": self.aborted,
            "undecided": self.undecided,
            "median_intervals_to_decision": statistics.median(self.intervals) if self.intervals else None,
            "median_instances_to_decision": statistics.median(self.decided_instances)
            if self.decided_instances
            else None,
        }


def _latency_shares(bounds: np.ndarray) -> np.ndarray:
    """P(bucket) of a lognormal predict latency (median 0.3 ms), for a histogram with these bounds (+Inf last)."""
    from math import erf, log, sqrt

    cdf = [0.5 * (1 + erf((log(b) - log(0.0003)) / (0.5 * sqrt(2)))) for b in bounds]
    return np.diff([0.0, *cdf, 1.0])


class Sides:
    """Per rollout, cumulative counts: requests, errors, latency buckets, instances by (bucket, label)."""

    def __init__(self, n: int, latency_buckets: int) -> None:
        self.requests = np.zeros(n)
        self.errors = np.zeros(n)
        self.latency = np.zeros((n, latency_buckets))
        self.categories = np.zeros((n, 2 * len(PROBABILITY_BOUNDS)))

    def reset(self, i: int) -> None:
        self.requests[i] = self.errors[i] = 0
        self.latency[i] = 0
        self.categories[i] = 0

    def add(self, rows: np.ndarray, requests, errors, latency, categories) -> None:
        self.requests[rows] += requests
        self.errors[rows] += errors
        self.latency[rows] += latency
        self.categories[rows] += categories


def _cumulative(bounds: np.ndarray, counts: np.ndarray) -> tuple:
    running = np.cumsum(counts)
    pairs = [(float(b), float(c)) for b, c in zip(bounds, running[: len(bounds)], strict=True)]
    return (*pairs, (math.inf, float(running[-1])))


def simulate(s: Scenario, found: dict[str, Outcomes], rollouts: int, seed: int) -> Result:
    config = AnalysisConfig()
    weights = config.weights()
    rng = np.random.default_rng(seed)
    stable_p = found["stable"].categories()
    canary_p = found[s.canary].categories()
    latency_p = _latency_shares(LATENCY_BOUNDS if NEW else KSERVE_BOUNDS)
    nb = len(latency_p)
    judge_of = _new_judge(config, weights) if NEW else _old_judge(config, weights)
    result = Result(s.name, s.instances, rollouts)
    step = np.zeros(rollouts, dtype=int)  # index into weights
    active = np.ones(rollouts, dtype=bool)
    canary_all, stable_all, canary_step = Sides(rollouts, nb), Sides(rollouts, nb), Sides(rollouts, nb)
    states = [judge_of.start() for _ in range(rollouts)]
    seen = np.zeros(rollouts)  # all instances routed so far
    for interval in range(1, MAX_INTERVALS + 1):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        w = np.array(weights)[step[rows]] / 100.0
        n_canary = rng.binomial(s.instances, w)
        n_stable = s.instances - n_canary
        errors = rng.binomial(n_canary, s.error_share) if s.error_share else np.zeros_like(n_canary)
        answered = n_canary - errors
        c_cat = rng.multinomial(answered, canary_p)
        s_cat = rng.multinomial(n_stable, stable_p)
        c_lat = rng.multinomial(answered, latency_p)
        s_lat = rng.multinomial(n_stable, latency_p)
        seen[rows] += s.instances
        for sides in (canary_all, canary_step):
            sides.add(rows, n_canary, errors, c_lat, c_cat)
        stable_all.add(rows, n_stable, 0, s_lat, s_cat)
        for k, i in enumerate(rows):
            action, weight = judge_of.check(
                states[i], interval, int(weights[step[i]]), canary_step, canary_all, stable_all, i,
                (n_canary[k], answered[k], errors[k], c_lat[k], c_cat[k], n_stable[k], s_lat[k], s_cat[k]),
            )  # fmt: skip
            if action == "advance":
                step[i] = weights.index(weight)
                canary_step.reset(i)
            elif action in ("promote", "abort", "pause"):
                active[i] = False
                result.intervals.append(interval)
                result.decided_instances.append(seen[i])
                if action == "promote":
                    result.promoted += 1
                else:
                    result.aborted += action == "abort"
                    result.undecided += action == "pause"
                    result.canary_instances.append(canary_all.categories[i].sum())
                    result.stable_instances.append(stable_all.categories[i].sum())
                    for name in states[i].get("why", ()):
                        result.signals[name] = result.signals.get(name, 0) + 1
    result.undecided += int(active.sum())
    return result


class _new_judge:  # noqa: N801 - a namespace for this build's judge
    def __init__(self, config: AnalysisConfig, weights: list[int]) -> None:
        from spamops.deploy import judge, rollout

        self.judge, self.plan = judge, rollout.plan
        self.config = config
        self.weights = weights
        self.settings = judge.Settings.from_config(config, len(weights))

    def start(self) -> dict:
        return {"started_at": 0.0, "step_started_at": 0.0, "failed": 0}

    def _side(self, version: str, sides: Sides, i: int):
        j = self.judge
        cats = sides.categories[i]
        per_bucket = cats[: len(PROBABILITY_BOUNDS)] + cats[len(PROBABILITY_BOUNDS) :]
        return j.Side(
            version,
            requests=float(sides.requests[i]),
            errors=float(sides.errors[i]),
            latency=_cumulative(LATENCY_BOUNDS, sides.latency[i]),
            instances=float(cats.sum()),
            spam=float(cats[len(PROBABILITY_BOUNDS) :].sum()),
            probability=_cumulative(PROBABILITY_BOUNDS, per_bucket),
        )

    def check(self, state, interval, weight, canary_step, canary_all, stable_all, i, _draw):
        evidence = self.judge.Evidence(
            self._side("canary", canary_step, i),
            self._side("canary", canary_all, i),
            self._side("stable", stable_all, i),
        )
        verdict = self.judge.decide(evidence, self.settings)
        now = interval * INTERVAL
        p = self.plan(state, verdict, self.weights, weight, self.config, now)
        state["failed"] = p.failed
        if p.action == "advance":
            state["step_started_at"] = now
        if p.action in ("abort", "pause"):
            state["why"] = verdict.rejected + verdict.floors_failed or ["undecided"]
        return p.action, p.weight


class _old_judge:  # noqa: N801 - an earlier build's analysis.compare and its loop's counters
    def __init__(self, config: AnalysisConfig, weights: list[int]) -> None:
        self.config, self.weights = config, weights
        self.thresholds = analysis.Thresholds(
            min_requests=config.min_requests,
            min_success_rate=config.min_success_rate,
            max_p99_seconds=config.max_p99_seconds,
            max_spam_rate_diff=config.max_spam_rate_diff,
            max_probability_shift=config.max_probability_shift,
        )

    def start(self) -> dict:
        return {"failed": 0, "inconclusive": 0, "reference": None}

    @staticmethod
    def _p99(latency: np.ndarray) -> float | None:
        """histogram_quantile(0.99) over KServe's buckets, as the old query computed it."""
        total = latency.sum()
        if total <= 0:
            return None
        running, lower = 0.0, 0.0
        for bound, count in zip(KSERVE_BOUNDS, latency[: len(KSERVE_BOUNDS)], strict=True):
            if running + count >= 0.99 * total:
                return lower + (bound - lower) * (0.99 * total - running) / count
            running, lower = running + count, bound
        return float(KSERVE_BOUNDS[-1])

    def _side(self, version, requests, answered, errors, latency, cats):
        per_bucket = cats[: len(PROBABILITY_BOUNDS)] + cats[len(PROBABILITY_BOUNDS) :]
        instances = float(cats.sum())
        running = np.cumsum(per_bucket)
        # On a real cluster the old default success-rate and routed queries read spamops_gateway_requests_total,
        # which only the tests' traffic driver exports: no series, so the signal was skipped (fails open).
        return analysis.Side(
            version,
            requests=float(answered),  # the predictor's own histogram counts only what it answered
            routed=None,
            success_rate=None,
            p99_seconds=self._p99(latency),
            instances=instances,
            spam_rate=float(cats[len(PROBABILITY_BOUNDS) :].sum()) / instances if instances else None,
            cdf=[(float(b), float(c)) for b, c in zip(PROBABILITY_BOUNDS, running, strict=True)]
            + [(math.inf, float(running[-1]))],
        )

    def check(self, state, interval, weight, canary_step, canary_all, stable_all, i, draw):
        n_c, answered, errors, c_lat, c_cat, n_s, s_lat, s_cat = draw  # this interval only: the old window
        canary = self._side("canary", n_c, answered, errors, c_lat, c_cat)
        stable = self._side("stable", n_s, n_s, 0, s_lat, s_cat)
        t = self.thresholds
        reference = state["reference"]
        use_reference = weight >= 100 and reference is not None and stable.requests < t.min_requests
        check = analysis.compare(reference if use_reference else stable, canary, t)
        if not use_reference and stable.requests >= t.min_requests:
            state["reference"] = stable
        if check.verdict == "pass":
            state["failed"] = state["inconclusive"] = 0
            later = [w for w in self.weights if w > weight]
            return ("advance", later[0]) if later else ("promote", None)
        if check.verdict == "fail":
            state["failed"] += 1
            state["inconclusive"] = 0
            if state["failed"] >= self.config.threshold:
                state["why"] = [r.split(" ")[0] + " " + r.split(" ")[1] for r in check.reasons] or ["fail"]
                return "abort", None
            return "hold", None
        state["inconclusive"] += 1
        if state["inconclusive"] > self.config.inconclusive_limit:
            state["why"] = ["inconclusive"]
            return "abort", None
        return "hold", None


# ------------------------------------------------------------------ the fixed-horizon comparison
def stream(found: dict[str, Outcomes], instances: int, rollouts: int, seed: int, looks: int = 300) -> dict:
    """The recall-drop canary held at the first step's weight, checked every interval until the judge rejects.

    Within a rollout the loop promotes once a step passes, so a rollout's detection rate mixes the
    test's efficiency with when the steps end; this isolates the evidence the sequential test needs.
    """
    from spamops.deploy import judge

    config = AnalysisConfig()
    settings = judge.Settings.from_config(config)
    weight = config.weights()[0] / 100.0
    rng = np.random.default_rng(seed)
    helper = _new_judge(config, config.weights())
    latency_p = _latency_shares(LATENCY_BOUNDS)
    canary, stable = Sides(rollouts, len(latency_p)), Sides(rollouts, len(latency_p))
    active = np.ones(rollouts, dtype=bool)
    at = []
    for _ in range(looks):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        n_c = rng.binomial(instances, weight, size=rows.size)
        n_s = instances - n_c
        canary.add(rows, n_c, 0, rng.multinomial(n_c, latency_p), rng.multinomial(n_c, found["recall"].categories()))
        stable.add(rows, n_s, 0, rng.multinomial(n_s, latency_p), rng.multinomial(n_s, found["stable"].categories()))
        for i in rows:
            c = helper._side("canary", canary, i)
            verdict = judge.decide(judge.Evidence(c, c, helper._side("stable", stable, i)), settings)
            if verdict.rejected or verdict.floors_failed:
                active[i] = False
                at.append(canary.categories[i].sum())
    detected = len(at) / rollouts
    needed = fixed_horizon(found, settings.test_alpha, detected, (1 - weight) / weight)
    median = statistics.median(at) if at else None
    return {
        "instances_per_interval": instances,
        "weight": int(weight * 100),
        "rollouts": rollouts,
        "looks": looks,
        "detection_rate": detected,
        "median_canary_instances_at_detection": median,
        "fixed_horizon_canary_instances": needed,
        "sequential_over_fixed": None if median is None else median / needed,
    }


def fixed_horizon(found: dict[str, Outcomes], alpha: float, power: float, ratio: float) -> float:
    """Canary instances a fixed-horizon two-sided two-proportion z-test needs (stable = ratio x canary)."""
    from statistics import NormalDist

    p_c, p_s = found["recall"].spam.mean(), found["stable"].spam.mean()
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(min(power, 0.999))
    return z * z * (p_c * (1 - p_c) + p_s * (1 - p_s) / ratio) / (p_c - p_s) ** 2


SCENARIOS = [
    Scenario("A/A", 200, "stable"),
    Scenario("A/A", 1000, "stable"),
    Scenario("A/A", 10000, "stable"),
    Scenario("noisy-data model", 1000, "noisy"),
    Scenario("5% 5xx", 1000, "stable", 0.05),
    Scenario("all 503", 1000, "stable", 1.0),
    Scenario("recall -10 points", 1000, "recall"),
    Scenario("recall -10 points", 10000, "recall"),
    Scenario("recall -10 points", 100000, "recall"),
    Scenario("zero traffic", 0, "stable"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--data", type=Path, help="the real data CSV (default: $SPAMOPS_REAL_DATA/smsspamcollection-1k.csv)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--only", nargs="*", help="scenario names (e.g. 'A/A' 'all 503')")
    args = parser.parse_args(argv)
    data = (
        args.data
        or Path(os.environ.get("SPAMOPS_REAL_DATA", REPO.parent / "shared" / "data")) / "smsspamcollection-1k.csv"
    )
    if not data.is_file():
        print(f"{data}: no real data; set SPAMOPS_REAL_DATA or --data", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"judge: {'sequential (this build)' if NEW else 'per-interval compare (an earlier build)'}")
    with tempfile.TemporaryDirectory() as tmp:
        found = versions(data, Path(tmp), log)
    results, extra = [], []
    for k, s in enumerate(SCENARIOS):
        if args.only and s.name not in args.only:
            continue
        started = time.perf_counter()
        r = simulate(s, found, args.rollouts, args.seed + k)
        results.append(r)
        log(f"{s.name} at {s.instances}: {time.perf_counter() - started:.1f}s")
        if s.canary == "recall" and r.aborted and NEW:
            from spamops.deploy.judge import Settings

            settings = Settings.from_config(AnalysisConfig())
            detected = r.aborted / r.rollouts
            used = statistics.median(r.canary_instances)
            ratio = statistics.median(s_ / c for s_, c in zip(r.stable_instances, r.canary_instances, strict=True))
            needed = fixed_horizon(found, settings.test_alpha, detected, ratio)
            extra.append({"name": s.name, "instances_per_interval": s.instances, "detection_rate": detected,
                          "median_canary_instances_at_detection": used, "stable_per_canary": ratio,
                          "fixed_horizon_canary_instances": needed, "sequential_over_fixed": used / needed,
                          "aborting_signals": r.signals})  # fmt: skip
    doc = {"scenarios": [r.to_json() for r in results]}
    if extra:
        doc["recall_drop"] = extra
    if NEW and (not args.only or "recall -10 points" in args.only):
        started = time.perf_counter()
        doc["recall_drop_test"] = stream(found, 1000, max(200, args.rollouts // 5), args.seed + 100)
        log(f"recall-drop test alone: {time.perf_counter() - started:.1f}s")
    doc["judge"] = "sequential" if NEW else "per-interval"
    doc["recall"] = {"stable": found["stable"].recall, "canary": found["recall"].recall}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    head = f"{'scenario':<20}{'inst/interval':>14}{'rollouts':>10}{'promoted':>10}{'aborted':>9}{'undecided':>10}{'med. intervals':>15}{'med. instances':>15}"
    print(head)
    for row in doc["scenarios"]:
        mi = row["median_intervals_to_decision"]
        mn = row["median_instances_to_decision"]
        print(f"{row['name']:<20}{row['instances_per_interval']:>14}{row['rollouts']:>10}{row['promoted']:>10}"
              f"{row['aborted']:>9}{row['undecided']:>10}{'-' if mi is None else f'{mi:g}':>15}{'-' if mn is None else f'{mn:g}':>15}")  # fmt: skip
    if "recall_drop_test" in doc:
        t = doc["recall_drop_test"]
        print(
            f"recall drop, the test alone (canary held at {t['weight']}% of {t['instances_per_interval']}/interval, "
            f"{t['rollouts']} runs): detected {t['detection_rate']:.1%} within {t['looks']} intervals, median canary "
            f"instances at detection {t['median_canary_instances_at_detection']:.0f} vs a fixed-horizon test of the "
            f"same alpha and power: {t['fixed_horizon_canary_instances']:.0f} ({t['sequential_over_fixed']:.0%})"
        )
    for row in extra:
        print(
            f"recall drop in rollouts at {row['instances_per_interval']}/interval: detected {row['detection_rate']:.1%}, "
            f"median canary instances at detection {row['median_canary_instances_at_detection']:.0f} "
            f"(aborting signals: {row['aborting_signals']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
