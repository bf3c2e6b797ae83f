"""Fixtures of the serving tests: a model trained here, and running predictors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from spamops.cli import main
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.predictor import Predictor


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory) -> Path:
    """A local store where ``spamops train`` trained and promoted a model on the bundled demo data."""
    store = tmp_path_factory.mktemp("serving-store")
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    return store


@pytest.fixture(scope="session")
def production_version(trained_store: Path) -> str:
    return Registry(open_store(str(trained_store)), "spam").production().version


@pytest.fixture(scope="session")
def model_dir(trained_store: Path, production_version: str, tmp_path_factory) -> Path:
    """The production version pulled (checksums verified) into a model dir, as /mnt/models holds it."""
    dest = tmp_path_factory.mktemp("mnt-models") / "model"
    Registry(open_store(str(trained_store)), "spam").pull(production_version, dest)
    return dest


@pytest.fixture
def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model dir that a test may damage."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


@pytest.fixture(scope="module")
def predictor(model_dir: Path, tmp_path_factory) -> Iterator[Predictor]:
    """A healthy predictor serving the production model, shared by a test module."""
    server = Predictor(
        ["--model_dir", str(model_dir), "--max_batch_size", "50", "--max_body_bytes", "65536"],
        tmp_path_factory.mktemp("predictor") / "predictor.log",
    ).start()
    yield server
    server.stop()


@pytest.fixture
def start_predictor(tmp_path: Path) -> Iterator:
    """Start extra predictors with given arguments; all are stopped after the test."""
    started: list[Predictor] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Predictor:
        server = Predictor(list(args), tmp_path / f"predictor-{len(started)}.log", env=env or {})
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
