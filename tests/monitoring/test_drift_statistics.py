"""The binned drift statistics against SciPy's on the same discretised samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from spamops.features import FEATURE_BUCKETS
from spamops.monitoring.drift import compare, ks_statistic, psi, wasserstein

BOUNDS = FEATURE_BUCKETS["length"]


def binned(values) -> list[int]:
    return np.bincount(np.searchsorted(BOUNDS, values, side="left"), minlength=len(BOUNDS) + 1).tolist()


def as_points(counts) -> np.ndarray:
    """Each bucket's observations placed at its upper bound (the overflow bucket at the last bound)."""
    points = [*BOUNDS, BOUNDS[-1]]
    return np.repeat(points, counts)


@pytest.fixture
def samples():
    rng = np.random.default_rng(7)
    return rng.gamma(2.0, 40.0, 3000), rng.gamma(1.2, 25.0, 2000)


def test_ks_and_wasserstein_equal_scipys_on_the_discretised_samples(samples):
    ref, prod = binned(samples[0]), binned(samples[1])
    assert ks_statistic(ref, prod) == pytest.approx(stats.ks_2samp(as_points(ref), as_points(prod)).statistic)
    expected = stats.wasserstein_distance(as_points(ref), as_points(prod))
    assert wasserstein(ref, prod, BOUNDS) == pytest.approx(expected)


def test_identical_distributions_have_no_drift(samples):
    ref = binned(samples[0])
    doubled = [2 * c for c in ref]
    assert psi(ref, doubled) == pytest.approx(0.0)
    assert ks_statistic(ref, doubled) == pytest.approx(0.0)
    assert wasserstein(ref, doubled, BOUNDS) == pytest.approx(0.0)


def test_psi_is_finite_when_production_leaves_buckets_empty():
    ref = [10] * (len(BOUNDS) + 1)
    only_first = [100] + [0] * len(BOUNDS)
    assert 0.2 < psi(ref, only_first) < float("inf")


def test_below_the_minimum_sample_size_there_is_no_verdict(samples):
    ref, prod = binned(samples[0]), binned(samples[1][:99])
    drift = compare("length", "v", BOUNDS, ref, prod, reference_std=30.0, min_samples=100)
    assert drift.samples == 99
    assert (drift.psi, drift.ks, drift.wasserstein_normed) == (None, None, None)
    enough = compare("length", "v", BOUNDS, ref, binned(samples[1][:100]), reference_std=30.0, min_samples=100)
    assert enough.psi is not None and enough.wasserstein_normed == pytest.approx(
        wasserstein(ref, binned(samples[1][:100]), BOUNDS) / 30.0
    )


def test_histograms_of_different_buckets_are_refused():
    with pytest.raises(ValueError, match="cannot be compared"):
        psi([1, 2, 3], [1, 2])
