"""Fixtures of the rollout-analysis tests: three real model versions, their predictors, Prometheus, traffic.

Versions (trained here on the shared real data):
* ``stable``  - the real 1k messages, promoted (production);
* ``same``    - the same data with another seed: same quality, a healthy canary;
* ``spammy``  - the real messages with 60 % of the ham relabelled spam, gate
  refused (``--no-promote``): a canary that flags far more spam.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deployhelpers import TrafficDriver

from spamops.cli import main
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.predictor import Predictor
from spamops_dev.prometheus import Prometheus


def _train(store: Path, tmp: Path, name: str, data: Path, seed: int, *extra: str) -> str:
    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "train": {"seed": seed}, "data": {"sources": [str(data)]}}))
    out = tmp / f"{name}.json"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["train", "--config", str(config), "--quiet", "--json", *extra])
    assert code in (0, 3), buffer.getvalue()
    out.write_text(buffer.getvalue())
    return json.loads(buffer.getvalue())["version"]


@pytest.fixture(scope="session")
def fleet(real_data: Path, tmp_path_factory) -> dict:
    """The store and the three versions: ``{"store": Path, "stable": v, "same": v, "spammy": v}``."""
    tmp = tmp_path_factory.mktemp("fleet")
    store = tmp / "store"
    real = real_data / "smsspamcollection-1k.csv"
    rows = list(csv.DictReader(real.open()))
    rng = random.Random(3)
    noisy = tmp / "noisy.csv"
    with noisy.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "length", "punct"])
        writer.writeheader()
        for row in rows:
            label = "spam" if row["label"] == "ham" and rng.random() < 0.6 else row["label"]
            writer.writerow({"label": label, "length": row["length"], "punct": row["punct"]})
    stable = _train(store, tmp, "stable", real, 42)
    same = _train(store, tmp, "same", real, 7, "--no-promote")
    spammy = _train(store, tmp, "spammy", noisy, 42, "--no-promote")
    instances = [[int(r["length"]), int(r["punct"])] for r in rows]
    return {"store": store, "stable": stable, "same": same, "spammy": spammy, "instances": instances}


@pytest.fixture(scope="session")
def predictors(fleet: dict, tmp_path_factory) -> Iterator[dict[str, Predictor]]:
    """One real predictor process per version (version -> Predictor)."""
    registry = Registry(open_store(str(fleet["store"])), "spam")
    started: dict[str, Predictor] = {}
    try:
        for key in ("stable", "same", "spammy"):
            version = fleet[key]
            model_dir = registry.pull(version, tmp_path_factory.mktemp(f"mnt-{key}") / "model")
            started[version] = Predictor(["--model_dir", str(model_dir)], model_dir.parent / "predictor.log").start()
        yield started
    finally:
        for server in started.values():
            server.stop()


class Split:
    """What the driver reads as "the cluster's declared split" in these tests (set by the test or the loop)."""

    def __init__(self) -> None:
        self.canary: str | None = None
        self.percent = 0


@pytest.fixture(scope="session")
def traffic(fleet: dict, predictors: dict[str, Predictor]) -> Iterator[tuple[TrafficDriver, Split]]:
    split = Split()
    driver = TrafficDriver(
        {v: p.url for v, p in predictors.items()},
        fleet["stable"],
        fleet["same"],
        lambda: split.percent,
        fleet["instances"],
        rate=40.0,
    )
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
