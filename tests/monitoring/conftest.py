"""Fixtures of the monitoring tests: real predictors, Prometheus and Alertmanager on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spamops.cli import main
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.alertmanager import Alertmanager, WebhookSink
from spamops_dev.predictor import Predictor
from spamops_dev.prometheus import Prometheus


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/monitoring/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.monitoring)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """A local store where ``spamops train`` trained and promoted a model on the bundled demo data."""
    store = tmp_path_factory.mktemp("monitoring-store")
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    return store


@pytest.fixture(scope="session")
def demo_model_dir(demo_store: Path, tmp_path_factory) -> Path:
    """The production version pulled into a model dir, as /mnt/models holds it."""
    registry = Registry(open_store(str(demo_store)), "spam")
    dest = tmp_path_factory.mktemp("mnt-models") / "model"
    registry.pull(registry.production().version, dest)
    return dest


def _starter(make):
    """``start(*args)`` that builds a server with ``make(n, *args)``, starts it, and stops every one at the end."""
    started: list = []

    def start(*args, **kwargs):
        server = make(len(started), *args, **kwargs)
        started.append(server)
        return server.start()

    return start, started


@pytest.fixture
def start_predictor(tmp_path: Path) -> Iterator:
    """Start predictors serving a model dir; all are stopped after the test."""
    start, started = _starter(
        lambda n, model_dir, *args: Predictor(["--model_dir", str(model_dir), *args], tmp_path / f"predictor-{n}.log")
    )
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator:
    """Start a Prometheus scraping the given predictors/targets every second; stopped after the test."""

    def make(n: int, targets, **kwargs) -> Prometheus:
        addresses = [t if isinstance(t, str) else f"127.0.0.1:{t.port}" for t in targets]
        return Prometheus(tmp_path / f"prometheus-{n}", addresses, **kwargs)

    start, started = _starter(make)
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    """A test webhook that records what Alertmanager delivers."""
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: WebhookSink) -> Iterator[Alertmanager]:
    """An Alertmanager routing every alert to :func:`webhook`."""
    server = Alertmanager(tmp_path / "alertmanager", webhook.url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def real_model(real_data, tmp_path_factory):
    """(store, version, model dir, card): a model trained and promoted on the 1,000 real messages, pulled."""
    from spamops.cli import main
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    store = tmp_path_factory.mktemp("real-store")
    assert main(["train", "--store", str(store), "--data", str(real_data / "smsspamcollection-1k.csv"), "--quiet"]) == 0
    registry = Registry(open_store(str(store)), "spam")
    version = registry.production().version
    model_dir = tmp_path_factory.mktemp("real-model") / "model"
    registry.pull(version, model_dir)
    return store, version, model_dir, registry.card(version)
