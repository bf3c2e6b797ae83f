"""The one client of Prometheus's HTTP API (``/api/v1/query``) that spamops' readers share.

The analysis loop (``rollout auto``) needs a handful of scalars per check and the drift
monitor counter increases over a window; a dependency for that is not worth it.
Failures are :class:`PrometheusError` (one line naming the URL, exit code 1: retryable),
so the loop can count them as inconclusive checks and the monitor keep its last values.

PromQL's ``increase()`` is not used for the monitor's windows: it extrapolates to the
window's edges (fractional counts) and a series born inside the window loses everything
counted before its first scrape, which is every new predictor replica.  Instead two
instant queries read each series now and one window ago; a series absent then, or lower
then (a restart), counts from zero.  Replicas gone for more than Prometheus' 5-minute
lookback drop out.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from typing import Any

from spamops.errors import BadInputError, SpamopsError


class PrometheusError(SpamopsError):
    """Prometheus could not answer (unreachable, bad query, non-success status); retryable."""


class Prometheus:
    """Instant queries against one Prometheus server; ``queries`` counts them (the benchmark reads it)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(
                f"Prometheus URL {url!r} is not an http(s) URL; set --prometheus or rollout.prometheus_url"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.queries = 0

    def vector(self, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """The result of an instant query (at ``at``, default now) as ``(labels, value)`` pairs."""
        body = self._query(promql, at)
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] == "matrix":
            raise PrometheusError(f"Prometheus {self.url}: {promql!r} is a range query; use matrix()")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def _query(self, promql: str, at: float | None) -> dict[str, Any]:
        self.queries += 1
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        request = urllib.request.Request(  # noqa: S310 - URL from config, http(s) checked in __init__
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - URL from config
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, OSError):
                pass
            raise PrometheusError(
                f"Prometheus {self.url} refused {promql!r} ({exc.code}): {detail or exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(
                f"Prometheus {self.url} is unreachable ({reason}); check --prometheus / rollout.prometheus_url"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus {self.url}: {promql!r}: {body.get('errorType')}: {body.get('error')}")
        return body

    def matrix(self, promql: str, at: float | None = None) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """A range selector's raw samples (``metric{…}[5m]`` as an instant query): ``(labels, [(t, v)…])``."""
        body = self._query(promql, at)
        data = body["data"]
        if data["resultType"] != "matrix":
            raise PrometheusError(f"Prometheus {self.url}: expected a range selector, got {data['resultType']}")
        return [(item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]]

    def scalar(self, promql: str) -> float | None:
        """The one value of a query that aggregates to a single series; ``None`` when nothing matched."""
        result = self.vector(promql)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"Prometheus {self.url}: expected one series from {promql!r}, got {len(result)}")
        return result[0][1]

    def window_increase(
        self, selector: str, group_by: tuple[str, ...], window_seconds: float, now: float | None = None
    ) -> dict[tuple[str, ...], float]:
        """``selector``'s increase over the window per ``group_by`` values, summed over every other label."""
        now = time.time() if now is None else now
        current = self.vector(selector, now)
        past = {_identity(labels): value for labels, value in self.vector(selector, now - window_seconds)}
        sums: dict[tuple[str, ...], float] = defaultdict(float)
        for labels, value in current:
            before = past.get(_identity(labels), 0.0)
            sums[tuple(labels.get(k, "") for k in group_by)] += value - before if before <= value else value
        return dict(sums)


def _identity(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
