"""Counter increases over a window, read from Prometheus' HTTP API and summed over all replicas.

PromQL's ``increase()`` is not used: it extrapolates to the window's edges (fractional
counts) and a series born inside the window loses everything counted before its first
scrape, which is every new predictor replica.  Instead two instant queries read each
series now and one window ago; a series absent then, or lower then (a restart), counts
from zero.  Replicas that disappeared more than Prometheus' 5-minute lookback ago drop out.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict

from spamops.errors import BadInputError, SpamopsError


class PrometheusError(SpamopsError):
    """Prometheus could not be reached or refused a query (retryable: exit code 1)."""


class PrometheusAPI:
    """The few read calls the monitor needs; ``url`` is Prometheus' base URL."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"--prometheus {url!r}: give an http:// or https:// URL of the Prometheus server")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def instant(self, promql: str, at: float | None = None) -> list[dict]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as resp:  # noqa: S310 - http(s) checked above
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(f"Prometheus {self.url} refused {promql!r}: HTTP {exc.code} {detail}") from None
        except OSError as exc:
            raise PrometheusError(f"Prometheus {self.url} is unreachable: {exc}; check --prometheus") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"Prometheus {self.url}: {promql!r}: {doc.get('error')}")
        return doc["data"]["result"]

    def window_increase(
        self, selector: str, group_by: tuple[str, ...], window_seconds: float, now: float | None = None
    ) -> dict[tuple[str, ...], float]:
        """``selector``'s increase over the window per ``group_by`` values, summed over every other label."""
        now = time.time() if now is None else now
        current = self.instant(selector, now)
        past = {_identity(s["metric"]): float(s["value"][1]) for s in self.instant(selector, now - window_seconds)}
        sums: dict[tuple[str, ...], float] = defaultdict(float)
        for series in current:
            value = float(series["value"][1])
            before = past.get(_identity(series["metric"]), 0.0)
            sums[tuple(series["metric"].get(k, "") for k in group_by)] += value - before if before <= value else value
        return dict(sums)


def _identity(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
