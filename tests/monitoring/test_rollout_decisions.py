"""Rollout decisions reach Prometheus through the monitor, and an abort fires ``SpamopsCanaryAborted``.

Real parts: a store trained by ``spamops train``, rollout records written by the
writer ``spamops rollout`` uses (:class:`spamops.deploy.record.RolloutLog`),
``spamops monitor --serve`` as a process, and a real Prometheus that scrapes it
every second and evaluates the shipped rules file unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spamops.cli import main
from spamops.deploy.record import RolloutLog
from spamops.monitoring.rollouts import ACTIONS
from spamops.records import RolloutEntry
from spamops.registry.store import open_store
from spamops.registry.versions import Registry, count_decisions
from spamops_dev.daemon import Daemon, wait_for
from spamops_dev.ports import free_port
from spamops_dev.prometheus import Prometheus

RULES = Path(__file__).resolve().parents[2] / "helm" / "spamops" / "files" / "prometheus-rules.yaml"


def _entry(version: str, seq: int, action: str, weight: int) -> RolloutEntry:
    return RolloutEntry(
        rollout_id="20261201T120000Z-abc123", seq=seq, inference_service="spamops/spam", mode="serverless",
        stable_version="older", canary_version=version, action=action, weight=weight,
        reason="failed check 1/1: spam-rate difference +0.31 > 0.10" if action == "aborted" else "",
    )  # fmt: skip


def test_an_aborted_canary_in_the_store_fires_the_alert_for_that_version_only(tmp_path):
    store = tmp_path / "store"
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    registry = Registry(open_store(str(store)), "spam")
    version = registry.production().version
    port = free_port()
    prometheus = Prometheus(tmp_path / "prom", [f"127.0.0.1:{port}"], rule_files=[RULES]).start()
    monitor = Daemon(
        [
            *(sys.executable, "-m", "spamops", "monitor", "--serve", "--bind", "127.0.0.1", "--port", str(port)),
            *("--interval", "1", "--prometheus", prometheus.url, "--store", str(store)),
        ],
        tmp_path / "monitor.log",
        f"http://127.0.0.1:{port}/metrics",
        "monitor",
    )
    monitor.start()
    try:
        aborted = f'spamops_rollout_decisions_total{{model_version="{version}",action="aborted"}}'
        # Before any rollout the version's series is there, at 0: the first abort will be an increase.
        prometheus.wait_for_value(aborted, 0, timeout=30)
        assert prometheus.firing_alerts() == []

        log = RolloutLog(registry, version, "20261201T120000Z-abc123")
        for seq, (action, weight) in enumerate([("started", 10), ("held", 10), ("aborted", 0)]):
            log.append(_entry(version, seq, action, weight))

        prometheus.wait_for_value(aborted, 1, timeout=30)
        firing = wait_for(prometheus.firing_alerts, 30, what="a firing alert")
        assert [(a["labels"]["alertname"], a["labels"]["model_version"]) for a in firing] == [
            ("SpamopsCanaryAborted", version)
        ]
        assert firing[0]["annotations"]["summary"] == f"The canary of {version} was aborted"
        for action, count in (("started", 1), ("held", 1), ("promoted", 0)):
            assert prometheus.scalar(f'spamops_rollout_decisions_total{{model_version="{version}",action="{action}"}}') == count  # fmt: skip
    finally:
        monitor.stop()
        prometheus.stop()


def test_decisions_are_counted_from_the_record_keys_and_nothing_else():
    keys = [
        "spam/v1/model-card.json",
        "spam/v1/rollouts/r1/0000-started.json",
        "spam/v1/rollouts/r1/0001-switched-back.json",
        "spam/v1/rollouts/r1/0002-aborted.json",
        "spam/v1/rollouts/r2/0000-aborted.json",
        "spam/v2/model-card.json",
        "spam/v2/model.joblib",
        "spam/v3/rollouts/r1/notes.txt",  # not a record
        "spam/v3/rollouts/r1/0000-exploded.json",  # no such action
        "spam/history/0001-promote.json",
        "other/v1/rollouts/r1/0000-aborted.json",  # another model
    ]
    versions, decisions = count_decisions(keys, "spam")
    assert versions == {"v1", "v2"}
    assert dict(decisions) == {("v1", "started"): 1, ("v1", "switched-back"): 1, ("v1", "aborted"): 2}
    assert "switched-back" in ACTIONS and "aborted" in ACTIONS
