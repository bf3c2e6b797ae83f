"""The shadow gate of ``rollout auto`` against real Prometheus scraping real predictors with shadows.

Versions from conftest (trained on the shared real data): ``stable`` serves;
``spammy`` (60 % of the ham relabelled spam) shadows it on two replicas that
share the traffic, ``same`` (another seed) on a third.  The report sums the
counters of both replicas; its agreement must be the one computed offline from
the two pipelines on the same instances, and the gate's verdict must follow it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from spamops.config import AnalysisConfig
from spamops.deploy import shadow
from spamops.prometheus import Prometheus
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.serving.artifact import load_artifact
from spamops.serving.lookup import pipeline_scores
from spamops_dev.daemon import wait_for
from spamops_dev.predictor import Predictor
from spamops_dev.prometheus import Prometheus as PrometheusServer

pytestmark = [pytest.mark.realdata, pytest.mark.monitoring]
FLOOR = AnalysisConfig().shadow_min_agreement


@pytest.fixture(scope="module")
def shadowed(fleet: dict, tmp_path_factory) -> Iterator[dict[str, list[Predictor]]]:
    """Two replicas of stable shadowed by spammy, one of stable shadowed by same."""
    store, stable = fleet["store"], fleet["stable"]
    registry = Registry(open_store(str(store)), "spam")
    model_dir = registry.pull(stable, tmp_path_factory.mktemp("mnt-shadowed") / "model")
    logs = tmp_path_factory.mktemp("shadowed-logs")
    servers: dict[str, list[Predictor]] = {"spammy": [], "same": []}
    try:
        for key, replicas in (("spammy", 2), ("same", 1)):
            for i in range(replicas):
                server = Predictor(
                    ["--model_dir", str(model_dir), "--shadow-storage-uri", f"{store}/spam/{fleet[key]}/"],
                    logs / f"{key}-{i}.log",
                )
                servers[key].append(server.start())
        yield servers
    finally:
        for replicas in servers.values():
            for server in replicas:
                server.stop()


def offline_agreement(fleet: dict, other: str, X: np.ndarray, tmp_path) -> float:
    registry = Registry(open_store(str(fleet["store"])), "spam")
    labels = []
    for version in (fleet["stable"], fleet[other]):
        pipeline = load_artifact(registry.pull(version, tmp_path / version)).pipeline
        labels.append(pipeline_scores(pipeline, X)[1])
    return float(np.mean(labels[0] == labels[1]))


def test_the_shadow_report_sums_replicas_and_the_gate_follows_the_agreement(fleet, shadowed, tmp_path):
    targets = [p.url.removeprefix("http://") for replicas in shadowed.values() for p in replicas]
    server = PrometheusServer(tmp_path / "prometheus", targets).start()
    try:
        server.wait_for_targets_up(len(targets))
        server.wait_for_scrapes_since(time.time())  # every counter at 0 before the traffic: increase() sees all of it
        instances = fleet["instances"]
        batches = [instances[i : i + 50] for i in range(0, len(instances), 50)]
        for n, batch in enumerate(batches):
            spammy = shadowed["spammy"][n % 2]  # the two replicas share the traffic
            for replica in (spammy, shadowed["same"][0]):
                assert replica.post_json("/v1/models/spam:predict", {"instances": batch}).status == 200
        replicas = [replica for group in shadowed.values() for replica in group]
        wait_for(
            lambda: all(r.get("/v1/models/spam/shadow").json()["queue"]["depth"] == 0 for r in replicas),
            30,
            what="every shadow queue drained",
        )
        drained = time.time()
        pair = f'model_version="{fleet["stable"]}",shadow_version="{fleet["spammy"]}"'
        server.wait_for_value(f"sum(spamops_shadow_compared_total{{{pair}}})", len(instances))
        server.wait_for_scrapes_since(drained)  # every series as it stood once the shadows were done

        X = np.asarray(instances, dtype=float)
        prom = Prometheus(server.url)
        for key in ("spammy", "same"):
            found = shadow.report(prom, fleet["stable"], fleet[key], "5m")
            expected = offline_agreement(fleet, key, X, tmp_path / key)
            # increase() extrapolates to the window's edges: over a short series it overcounts, never under
            assert len(instances) <= found.compared <= 1.3 * len(instances)
            assert found.agreement_rate == pytest.approx(expected, abs=0.01), (key, found.summary())
            result, why = shadow.verdict(found, 500, FLOOR)
            assert result == ("pass" if expected >= FLOOR else "fail"), why
            too_few, why = shadow.verdict(found, 10 * len(instances), FLOOR)
            assert too_few == "inconclusive" and "instances compared" in why
        assert offline_agreement(fleet, "spammy", X, tmp_path / "again") < FLOOR  # the gate really refuses one
        one_replica = server.scalar(
            f'spamops_shadow_compared_total{{{pair},instance="{targets[0]}"}}'
        )  # each replica counts only its own share: the report is the sum
        assert 0 < one_replica < len(instances)
    finally:
        server.stop()
