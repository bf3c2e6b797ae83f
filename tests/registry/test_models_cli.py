"""The registry commands as operators use them: list, history, pull, gate, and retraining on the same data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest


def _train(cli, store, *extra) -> dict:
    result = cli("train", "--store", store, "--json", "--quiet", *extra)
    assert result.code in (0, 3), result.err
    return result.json()


@pytest.fixture
def noisy_csv(tmp_path) -> Path:
    rng = random.Random(7)
    rows = [f"{'spam' if rng.random() < 0.2 else 'ham'},{rng.randint(5, 200)},{rng.randint(0, 20)}" for _ in range(400)]
    path = tmp_path / "noisy.csv"
    path.write_text("label,length,punct\n" + "\n".join(rows) + "\n")
    return path


def test_models_list_fits_120_columns_and_wide_and_json_give_more(cli, store, noisy_csv):
    good = _train(cli, store)["version"]
    refused = _train(cli, store, "--data", noisy_csv)["version"]
    reason = "incident 4711: the on-call lead accepted the risk until the retrain with fresh labels lands next week"
    assert cli("promote", refused, "--store", store, "--force", "--reason", reason).code == 0

    table = cli("models", "list", "--store", store)
    assert table.code == 0
    lines = table.out.splitlines()
    assert max(len(line) for line in lines) <= 120, table.out
    assert lines[0].split() == ["version", "status", "created", "accuracy", "spam_f1", "reason"]
    row = next(line for line in lines if line.startswith(refused))
    assert "production" in row and "forced: incident 4711" in row  # a forced promotion shows its reason
    assert any(line.startswith(good) and "passed" in line for line in lines)

    wide = cli("models", "list", "--store", store, "-o", "wide")
    assert wide.code == 0 and "fingerprint" in wide.out.splitlines()[0] and reason in wide.out
    listing = cli("models", "list", "--store", store, "--json").json()
    rows = {r["version"]: r for r in listing["versions"]}
    assert rows[refused]["forced"] is True and rows[refused]["reason"].startswith(f"forced: {reason}")
    assert rows[good]["created_at"] and rows[good]["storage_uri"].endswith(f"/{good}/")
    assert listing["production"]["forced"] is True and listing["production"]["reason"] == reason


def test_models_history_lists_every_pointer_move(cli, store):
    v1 = _train(cli, store)["version"]
    v2 = _train(cli, store, "--force-new")["version"]
    assert cli("rollback", "--store", store).code == 0

    moves = cli("models", "history", "--store", store, "--json")
    assert moves.code == 0
    assert [(m["action"], m["version"], m["previous_version"]) for m in moves.json()] == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("rollback", v1, v2),
    ]
    table = cli("models", "history", "--store", store).out.splitlines()
    assert table[0].split()[:4] == ["when", "(UTC)", "action", "version"]
    assert table[-1].split()[2:4] == ["rollback", v1]


def test_models_list_and_history_of_a_store_that_does_not_exist_say_so(cli, tmp_path):
    missing = tmp_path / "no-such-store"
    for command in ("list", "history"):
        result = cli("models", command, "--store", missing)
        assert result.code == 2
        assert f"{missing}: store does not exist" in result.err
    assert not missing.exists()


def test_retraining_on_identical_data_stores_nothing_unless_forced(cli, store):
    first = _train(cli, store)
    again = cli("train", "--store", store, "--json", "--quiet")
    assert again.code == 0, again.err
    assert again.json()["unchanged"] is True and again.json()["version"] == first["version"]
    said = cli("train", "--store", store)
    assert said.code == 0 and f"unchanged: {first['version']}" in said.out
    assert len(cli("models", "list", "--store", store, "--json").json()["versions"]) == 1

    other_settings = cli("train", "--store", store, "--json", "--quiet", "--config", _config(store, seed=7))
    assert other_settings.json()["unchanged"] is False
    forced = _train(cli, store, "--force-new")
    assert forced["unchanged"] is False and forced["version"] != first["version"]
    assert len(cli("models", "list", "--store", store, "--json").json()["versions"]) == 3


def _config(store: Path, **train) -> Path:
    path = store.parent / "run.yaml"
    path.write_text(json.dumps({"train": train}))
    return path


def test_pull_into_a_non_empty_directory_needs_overwrite(cli, store, tmp_path):
    version = _train(cli, store)["version"]
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    refused = cli("models", "pull", version, dest, "--store", store)
    assert refused.code == 2 and "not empty" in refused.err and "--overwrite" in refused.err
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]
    pulled = cli("models", "pull", version, dest, "--store", store, "--overwrite")
    assert pulled.code == 0, pulled.err
    assert (dest / "model.joblib").is_file() and (dest / "notes.txt").read_text() == "mine"


def test_gate_on_the_production_version_says_it_compares_production_with_itself(cli, store):
    version = _train(cli, store)["version"]
    result = cli("gate", version, "--store", store)
    assert result.code == 0
    assert "comparing production with itself" in result.out
    assert "no production model yet" not in result.out
