"""A real Prometheus (Debian's ``prometheus`` package) on loopback, with a generated config.

It scrapes the given ``host:port`` targets every second (so tests wait seconds, not
minutes), evaluates the given rule files every second and sends alerts to the given
Alertmanager.  Helpers query the HTTP API and wait for a result.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from spamops_dev.daemon import HOST, Daemon, free_port, http_json, require_binary, wait_for

SCRAPE_INTERVAL = "1s"


def prometheus_config(
    targets: Sequence[str],
    *,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    job: str = "spamops",
) -> dict:
    """The ``prometheus.yml`` document: one static job over ``targets``, 1 s scrape and rule evaluation."""
    config: dict = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


class Prometheus:
    """One Prometheus server; ``url`` is its base URL on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[str],
        *,
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(
            yaml.safe_dump(prometheus_config(targets, rule_files=rule_files, alertmanager=alertmanager))
        )
        cmd = [
            require_binary("prometheus", "prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--log.level=warn",
        ]
        self.daemon = Daemon(cmd, self.workdir / "prometheus.log", f"{self.url}/-/ready", "prometheus")

    def start(self) -> Prometheus:
        self.daemon.start()
        return self

    def stop(self) -> None:
        self.daemon.stop()

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``'s ``data`` (raises on an API error, naming the error)."""
        query = urllib.parse.urlencode(params)
        doc = http_json(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""))
        if doc.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query's vector: ``[{'metric': {...}, 'value': [ts, 'v']}, ...]``."""
        return self.api("query", query=promql)["result"]

    def scalar(self, promql: str) -> float | None:
        """The value of a query that returns one series, or None when it returns none."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{promql!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def wait_for_value(self, promql: str, expected: float, timeout: float = 20) -> float:
        """Wait until ``promql`` evaluates to ``expected`` (scrapes land every second)."""
        wait_for(lambda: self.scalar(promql) == expected, timeout, what=f"{promql} == {expected}")
        return expected

    def wait_for_targets_up(self, count: int, timeout: float = 20) -> None:
        """Wait until ``count`` targets were scraped successfully."""

        def up() -> bool:
            targets = self.api("targets")["activeTargets"]
            return sum(t["health"] == "up" for t in targets) >= count

        wait_for(up, timeout, what=f"{count} scrape targets up")

    def wait_for_scrapes_since(self, since: float, timeout: float = 30) -> None:
        """Wait until every target was last scraped at or after ``since`` (Unix seconds): from then on
        each target's newest sample shows what it exported at ``since`` or later, and a range of
        ``now - since`` seconds or less holds only samples taken after ``since``."""

        def scraped() -> bool:
            stamps = [float(r["value"][1]) for r in self.query("timestamp(up)")]
            return bool(stamps) and min(stamps) >= since

        wait_for(scraped, timeout, what=f"every target scraped since {since:.1f}")

    def firing_alerts(self) -> list[dict]:
        """Alerts the rule evaluator currently holds in state ``firing``."""
        return [a for a in self.api("alerts")["alerts"] if a["state"] == "firing"]
