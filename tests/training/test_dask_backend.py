"""``train.backend: dask``: the grid search runs on a real Dask cluster and changes nothing in the result.

The cluster is ``distributed.LocalCluster`` with separate worker *processes* on loopback: the
same scheduler and worker code a ``DaskCluster`` runs on Kubernetes, started and stopped here.
"""

from __future__ import annotations

import logging
import os

import pytest
import yaml

pytestmark = [pytest.mark.dask, pytest.mark.realdata]

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as running:
        yield running


def _config(tmp_path, name: str, train: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"train": train}))
    return str(path)


def test_dask_backend_gives_the_local_model_and_gate_decision(real_data, cli, tmp_path, cluster):
    original = real_data / "smsspamcollection-1k.csv"
    incoming = real_data / "synthetic_sms_numeric.csv"
    local_cfg = _config(tmp_path, "local", {"seed": 11})
    dask_cfg = _config(tmp_path, "dask", {"seed": 11, "backend": "dask", "dask_scheduler": cluster.scheduler_address})
    runs = {}
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as tasks:
        for backend, cfg in (("local", local_cfg), ("dask", dask_cfg)):
            store = tmp_path / f"store-{backend}"
            runs[backend] = (
                cli("train", "--config", cfg, "--store", store, "--data", original, incoming, "--json"),
                store,
            )
        worker_pids = set(client.run(os.getpid).values())
        workers = set(client.scheduler_info()["workers"])

    (local, lstore), (dask, dstore) = runs["local"], runs["dask"]
    assert local.code == dask.code == 3  # refused by the gate, the same way
    assert dask.json()["gate"] == local.json()["gate"]
    lcard, dcard = _card(cli, lstore, local.json()["version"]), _card(cli, dstore, dask.json()["version"])
    assert dcard["params"] == lcard["params"] and dcard["training"] == lcard["training"]
    assert dcard["metrics"] == lcard["metrics"]
    assert dcard["sha256"] == lcard["sha256"]  # the same model.joblib, byte for byte
    assert f"dask at {cluster.scheduler_address}" in dask.err
    # the fits really ran in the worker processes: 5 folds x 2 values of p
    ran = [t for t in tasks.data if "_score_fold" in t["key"]]
    assert len(ran) == 10
    assert {t["worker"] for t in ran} <= workers
    assert os.getpid() not in worker_pids and len(worker_pids) == 2


def test_dask_backend_without_a_scheduler_is_a_config_error(real_data, cli, tmp_path, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    cfg = _config(tmp_path, "noaddr", {"backend": "dask"})
    result = cli("train", "--config", cfg, "--store", tmp_path / "s", "--data", real_data / "smsspamcollection-1k.csv")
    assert result.code == 2
    assert "train.backend is 'dask' but no scheduler is named" in result.err


def test_an_unreachable_scheduler_is_retryable_and_named(real_data, cli, tmp_path):
    cfg = _config(
        tmp_path, "down", {"backend": "dask", "dask_scheduler": "tcp://127.0.0.1:9", "dask_connect_timeout_seconds": 2}
    )
    result = cli("train", "--config", cfg, "--store", tmp_path / "s", "--data", real_data / "smsspamcollection-1k.csv")
    assert result.code == 1
    assert "tcp://127.0.0.1:9: cannot reach the Dask scheduler" in result.err


def _card(cli, store, version: str) -> dict:
    return cli("models", "show", version, "--store", store, "--json").json()
