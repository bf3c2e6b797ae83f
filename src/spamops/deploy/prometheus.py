"""A minimal client for Prometheus's HTTP API (``/api/v1/query``): instant vector queries only.

The analysis loop needs a handful of scalars per check; a dependency for that
is not worth it.  Failures are :class:`PrometheusError` (one line, naming the
URL), so the loop can count them as inconclusive checks instead of crashing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from spamops.errors import SpamopsError


class PrometheusError(SpamopsError):
    """Prometheus could not answer (unreachable, bad query, non-success status)."""


class Prometheus:
    """Instant queries against one Prometheus server."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise PrometheusError(f"prometheus {url}: not an http(s) URL; check rollout.prometheus_url / --prometheus")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.queries = 0

    def vector(self, promql: str) -> list[tuple[dict, float]]:
        """The result of an instant query as ``(labels, value)`` pairs (empty when no series match)."""
        self.queries += 1
        request = urllib.request.Request(  # noqa: S310 - URL from config, http(s) checked in __init__
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode({"query": promql}).encode(),
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
                f"prometheus {self.url}: query refused ({exc.code}): {detail or exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(
                f"prometheus {self.url}: unreachable ({reason}); check rollout.prometheus_url"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(f"prometheus {self.url}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, promql: str) -> float | None:
        """The one value of a query that aggregates to a single series; ``None`` when nothing matched."""
        result = self.vector(promql)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"prometheus {self.url}: expected one series from {promql!r}, got {len(result)}")
        return result[0][1]
