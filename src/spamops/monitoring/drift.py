"""Drift statistics between two histograms over the same buckets (training reference vs production).

Both inputs are per-bucket counts in Prometheus' ``le`` layout: ``counts[i]`` holds the
values in ``(bounds[i-1], bounds[i]]`` and the last entry those above every bound.
Production only exists as such bucket counts (the predictor never keeps raw values), so
every statistic here is the binned version; ``docs/monitoring.md`` states the choices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PSI_EPSILON = 1e-4  # share given to an empty bucket so PSI stays finite


def shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("a histogram with no observations has no distribution")
    return [c / total for c in counts]


def psi(reference: Sequence[float], production: Sequence[float]) -> float:
    """Population stability index: ``sum((p - q) * ln(p / q))`` over buckets, empty shares set to ``PSI_EPSILON``."""
    _same_length(reference, production)
    total = 0.0
    for q, p in zip(shares(reference), shares(production), strict=True):
        q, p = max(q, PSI_EPSILON), max(p, PSI_EPSILON)
        total += (p - q) * math.log(p / q)
    return total


def ks_statistic(reference: Sequence[float], production: Sequence[float]) -> float:
    """Kolmogorov–Smirnov distance of the two binned CDFs: the largest gap at a bucket bound."""
    _same_length(reference, production)
    gap = f_ref = f_prod = 0.0
    for q, p in zip(shares(reference), shares(production), strict=True):
        f_ref, f_prod = f_ref + q, f_prod + p
        gap = max(gap, abs(f_ref - f_prod))
    return gap


def wasserstein(reference: Sequence[float], production: Sequence[float], bounds: Sequence[float]) -> float:
    """Earth mover's distance with each bucket's mass at its upper bound (the overflow bucket at the last one).

    For those two discrete distributions it is exact: ``sum(|F_ref - F_prod| * width)``
    over consecutive bounds.
    """
    _same_length(reference, production)
    if len(bounds) != len(reference) - 1:
        raise ValueError(f"{len(bounds)} bounds do not fit {len(reference)} buckets (want buckets - 1)")
    total = f_ref = f_prod = 0.0
    q_shares, p_shares = shares(reference), shares(production)
    for i in range(len(bounds) - 1):
        f_ref, f_prod = f_ref + q_shares[i], f_prod + p_shares[i]
        total += abs(f_ref - f_prod) * (bounds[i + 1] - bounds[i])
    return total


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of one model version over one window."""

    feature: str
    model_version: str
    samples: int
    psi: float | None  # None below the minimum sample size: no verdict, not "no drift"
    ks: float | None
    wasserstein_normed: float | None  # Wasserstein distance / the reference's standard deviation
    reference: list[float]
    production: list[float]
    bounds: list[float]

    def to_json(self) -> dict:
        return {
            "feature": self.feature,
            "model_version": self.model_version,
            "samples": self.samples,
            "psi": self.psi,
            "ks": self.ks,
            "wasserstein_normed": self.wasserstein_normed,
            "bounds": [*self.bounds, "+Inf"],
            "reference_share": _rounded_shares(self.reference),
            "production_share": _rounded_shares(self.production) if self.samples else None,
        }


def compare(
    feature: str,
    model_version: str,
    bounds: Sequence[float],
    reference: Sequence[float],
    production: Sequence[float],
    *,
    reference_std: float | None,
    min_samples: int,
) -> FeatureDrift:
    """All statistics, or none of them when production has fewer than ``min_samples`` observations."""
    samples = int(round(sum(production)))
    enough = samples >= min_samples and samples > 0
    w = wasserstein(reference, production, bounds) if enough else None
    return FeatureDrift(
        feature=feature,
        model_version=model_version,
        samples=samples,
        psi=psi(reference, production) if enough else None,
        ks=ks_statistic(reference, production) if enough else None,
        wasserstein_normed=(w / reference_std if reference_std else None) if w is not None else None,
        reference=list(reference),
        production=list(production),
        bounds=list(bounds),
    )


def _same_length(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"histograms with {len(a)} and {len(b)} buckets cannot be compared")


def _rounded_shares(counts: Sequence[float]) -> list[float]:
    return [round(s, 4) for s in shares(counts)]
