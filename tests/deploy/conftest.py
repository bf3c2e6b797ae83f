"""Fixtures of the rollout-analysis tests: three real model versions, their predictors, Prometheus, traffic.

The versions are made by :func:`deployhelpers.train_fleet` (stable, a same-quality
``same``, a ``spammy`` one trained on noisy labels); tests/k8s/test_cluster_rollout.py
uses the same helpers against the test cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deployhelpers import Backend, TrafficDriver, start_predictors, train_fleet

from spamops_dev.predictor import Predictor
from spamops_dev.prometheus import Prometheus


@pytest.fixture(scope="session")
def fleet(real_data: Path, tmp_path_factory) -> dict:
    """The store and the three versions: ``{"store": Path, "stable": v, "same": v, "spammy": v}``."""
    return train_fleet(real_data, tmp_path_factory.mktemp("fleet"))


@pytest.fixture(scope="session")
def predictors(fleet: dict, tmp_path_factory) -> Iterator[dict[str, Predictor]]:
    """One real predictor process per version (version -> Predictor)."""
    started = start_predictors(fleet, tmp_path_factory.mktemp("predictors"))
    yield started
    for server in started.values():
        server.stop()


class Split:
    """What the driver reads as "the cluster's declared split" in these tests (set by the test)."""

    def __init__(self, stable: str, canary: str) -> None:
        self.stable, self.canary = stable, canary
        self.percent = 0

    def routes(self) -> list[Backend]:
        return [Backend(self.stable, 100 - self.percent), Backend(self.canary, self.percent)]


@pytest.fixture(scope="session")
def traffic(fleet: dict, predictors: dict[str, Predictor]) -> Iterator[tuple[TrafficDriver, Split]]:
    split = Split(fleet["stable"], fleet["same"])
    driver = TrafficDriver({v: p.url for v, p in predictors.items()}, split.routes, fleet["instances"], rate=40.0)
    driver.start()
    yield driver, split
    driver.stop()


@pytest.fixture(scope="session")
def prometheus(predictors: dict[str, Predictor], traffic, tmp_path_factory) -> Iterator[Prometheus]:
    driver, _ = traffic
    targets = [p.url.removeprefix("http://") for p in predictors.values()] + [driver.target]
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), targets).start()
    server.wait_for_targets_up(len(targets))
    yield server
    server.stop()
