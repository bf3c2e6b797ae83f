"""Range counting over raw Prometheus samples: exact counts from a start time, restarts included.

The samples are what an instant query of ``metric[Ns]`` returns: per series, ``(unix time, value)``
pairs at the scrape interval. A predictor restart inside the range shows as a counter that drops.
"""

from __future__ import annotations

import math

from spamops.evidence import Series, cumulative, group, host, increase

START = 1000.0


def scrapes(values, first=990.0, every=5.0):
    return [(first + i * every, float(v)) for i, v in enumerate(values)]


def test_the_increase_counts_from_the_last_sample_before_the_start():
    # scraped at 990, 995, 1000 (the start: baseline 12), then 1005, 1010
    assert increase(scrapes([10, 11, 12, 15, 20]), START) == 8


def test_a_restart_inside_the_range_counts_what_the_new_process_counted_since():
    # 12 at the start, 18 before the restart, then the new process: 3, 7
    assert increase(scrapes([10, 12, 15, 18, 3, 7], first=995.0), START) == (18 - 12) + 7


def test_a_series_born_inside_the_range_counts_from_zero():
    """A new replica's first scrape already holds what it answered before it: none of it is lost."""
    assert increase([(1003.0, 40.0), (1008.0, 55.0)], START) == 55


def test_samples_after_the_end_are_not_counted():
    assert increase(scrapes([0, 0, 0, 5, 9]), START, end=1005.0) == 5


def test_histogram_buckets_through_a_restart_stay_cumulative_and_exact():
    """Two buckets of one instance (le=0.001 and +Inf); the process restarts between 1005 and 1010."""
    fast = Series({"le": "0.001", "instance": "a"}, scrapes([50, 60, 70, 2, 5], first=995.0))
    every = Series({"le": "+Inf", "instance": "a"}, scrapes([80, 95, 110, 3, 8], first=995.0))
    other = Series({"le": "+Inf", "instance": "b"}, scrapes([1, 1, 4], first=1000.0))

    counts = group([fast, every, other], START, ("le",))

    assert counts == {("0.001",): (70 - 60) + 5, ("+Inf",): (110 - 95) + 8 + 3}
    assert counts[("0.001",)] <= counts[("+Inf",)]  # a restart never makes a lower bucket larger


def test_group_by_a_key_function_drops_series_it_cannot_place():
    a = Series({"instance": "10.0.0.1:8080", "code": "200"}, scrapes([0, 5, 9], first=1000.0))
    b = Series({"instance": "10.0.0.9:8080", "code": "200"}, scrapes([0, 5], first=1000.0))
    versions = {"10.0.0.1": "v1"}

    counts = group(
        [a, b], START, (), key=lambda labels: (versions[h],) if (h := host(labels["instance"])) in versions else None
    )

    assert counts == {("v1",): 9}


def test_host_is_the_address_without_its_port():
    assert host("10.0.0.1:8080") == "10.0.0.1" and host("[fd00::1]:15020") == "fd00::1"
    assert host("predictor") == "predictor" and host(None) is None


def test_cumulative_sorts_and_ends_at_inf():
    assert cumulative({0.5: 3.0, 0.1: 1.0}) == [(0.1, 1.0), (0.5, 3.0), (math.inf, 3.0)]
