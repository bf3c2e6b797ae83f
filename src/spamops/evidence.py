"""Counting what counters and histograms added over a time range, exactly, across restarts.

The canary judge accumulates evidence from a step's start (or the rollout's) to now, and the
drift monitor compares windows; both need "how many requests / instances / bucket hits were
counted between *start* and *end*", per version, from Prometheus counters.  PromQL's
``increase()`` is the wrong tool for that: it extrapolates to the range's edges (fractional
counts that no test statistic should see), and a series born inside the range loses
everything it counted before its first scrape - which is every new predictor replica.

So this module reads the **raw samples** (an instant query of a range selector,
``metric{…}[Ns]``, which Prometheus answers with every stored sample) from a *lookback*
before ``start`` up to ``end``, and counts per series:

* the baseline is the series' last sample at or before ``start``; a series with no sample
  there was born inside the range and counts from zero (a counter starts at 0);
* each later sample adds ``v - previous`` when the counter grew, and ``v`` itself when it
  went down - a **counter reset** (the process restarted and counted ``v`` since);
* histogram buckets are counters too (one series per ``le``), so a restart inside the range
  resets every bucket of that instance at once and each is counted the same way: the
  cumulative bucket counts stay monotone in ``le``.

What is lost: increments between a restart and the process' last scrape before it died
(at most one scrape interval of one replica), as in every Prometheus-based count.

:func:`increase` and :func:`group` are pure (the unit tests feed them samples);
:func:`counts` and :func:`versions` fetch through the one Prometheus client.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from spamops import names

LOOKBACK_SECONDS = 300.0  # Prometheus' default staleness lookback: a series silent longer is gone
Samples = Sequence[tuple[float, float]]
Key = Callable[[dict[str, str]], tuple[str, ...] | None]


class RangeSource(Protocol):
    """What the counting reads from: :class:`spamops.prometheus.Prometheus` (its ``matrix``)."""

    def matrix(self, promql: str, at: float | None = None) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """A range selector's raw samples as ``(labels, [(t, v)…])``."""
        ...

    def vector(self, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """An instant query's ``(labels, value)`` pairs."""
        ...


@dataclass(frozen=True)
class Series:
    """One series' labels and its raw ``(unix time, value)`` samples, oldest first."""

    labels: dict[str, str]
    samples: Samples


def increase(samples: Samples, start: float, end: float | None = None) -> float:
    """What a counter added in ``(start, end]``, counter resets included (see the module docstring)."""
    previous: float | None = None
    total = 0.0
    for t, value in samples:
        if end is not None and t > end:
            break
        if t <= start:
            previous = value
            continue
        if previous is None:
            previous = 0.0  # born inside the range: a new counter starts at zero
        total += value - previous if value >= previous else value
        previous = value
    return total


def group(
    series: Iterable[Series],
    start: float,
    by: Sequence[str],
    *,
    end: float | None = None,
    key: Key | None = None,
) -> dict[tuple[str, ...], float]:
    """Each series' :func:`increase`, summed per value of ``by`` labels (``key(labels)`` overrides ``by``)."""
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for s in series:
        k = key(s.labels) if key is not None else tuple(s.labels.get(name, "") for name in by)
        if k is None:
            continue
        sums[k] += increase(s.samples, start, end)
    return dict(sums)


def host(address: str | None) -> str | None:
    """The host part of ``host:port`` (an IPv6 ``[h]:port`` too): what joins a pod's series from two exporters."""
    if not address:
        return None
    if address.startswith("["):
        return address[1 : address.find("]")] if "]" in address else address
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def cumulative(buckets: dict[float, float]) -> list[tuple[float, float]]:
    """Per-``le`` counts as a sorted cumulative list ending at +Inf (Prometheus' own bucket form)."""
    out = sorted(buckets.items())
    if out and not math.isinf(out[-1][0]):
        out.append((math.inf, out[-1][1]))
    return out


# ---------------------------------------------------------------- fetching
def fetch(
    prom: RangeSource, selector: str, start: float, end: float, *, lookback: float = LOOKBACK_SECONDS
) -> list[Series]:
    """Every sample of ``selector``'s series from ``start - lookback`` to ``end`` (one query)."""
    seconds = max(1, math.ceil(end - start + lookback))
    return [Series(labels, samples) for labels, samples in prom.matrix(f"{selector}[{seconds}s]", at=end)]


class Addresses:
    """Which version each scraped address served: its ``instance`` exactly, else its host alone.

    The host fallback joins an exporter scraped on another port of the same pod (a sidecar's);
    a host or address seen with two versions in the range (an IP reused, several processes on
    one host) is left out rather than guessed.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        exact: dict[str, set[str]] = defaultdict(set)
        hosts: dict[str, set[str]] = defaultdict(set)
        for address, version in pairs:
            exact[address].add(version)
            hosts[host(address) or ""].add(version)
        self.exact = {a: next(iter(v)) for a, v in exact.items() if len(v) == 1}
        self.hosts = {h: next(iter(v)) for h, v in hosts.items() if len(v) == 1}

    def version(self, address: str | None) -> str | None:
        if not address:
            return None
        return self.exact.get(address) or self.hosts.get(host(address) or "")

    def values(self) -> set[str]:
        return set(self.exact.values())


def versions(
    prom: RangeSource, start: float, end: float, *, info: str = names.MODEL_INFO, label: str = names.LABEL_MODEL_VERSION
) -> Addresses:
    """The versions the scraped addresses served in the range, from ``info``'s ``instance`` and ``label``."""
    seconds = max(1, math.ceil(end - start))
    return Addresses(
        (labels["instance"], labels[label])
        for labels, _ in prom.vector(f"last_over_time({info}[{seconds}s])", at=end)
        if labels.get("instance") and labels.get(label)
    )


def counts(
    prom: RangeSource,
    selector: str,
    start: float,
    end: float,
    *,
    by: Sequence[str] = (),
    join: str | None = None,
    hosts: Addresses | None = None,
) -> dict[tuple[str, ...], float]:
    """``selector``'s increase over ``(start, end]`` per ``by`` labels.

    With ``join`` (a label holding a pod address, e.g. ``instance``), the first key element is
    the version that address served (``hosts``, from :func:`versions`); series of addresses
    that served no known version are dropped.
    """
    series = fetch(prom, selector, start, end)
    if join is None:
        return group(series, start, by, end=end)
    hosts = hosts or Addresses(())

    def key(labels: dict[str, str]) -> tuple[str, ...] | None:
        version = hosts.version(labels.get(join))
        return None if version is None else (version, *(labels.get(name, "") for name in by))

    return group(series, start, by, end=end, key=key)
