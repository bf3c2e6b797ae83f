"""Records written by earlier builds (committed under tests/fixtures/records) load in this one.

Every test here runs on a copy of each generation's local store; the store-reading ones also run
on an S3 store from tests/s3/test_s3_record_fixtures.py, which imports them with its own
``store`` and ``kind`` fixtures (the fixture tree uploaded to a SeaweedFS bucket).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from recordfixtures import GENERATIONS, MODEL, local_copy, stored_card, versions
from spamops.records import CARD_FILE
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.serving.artifact import ArtifactError, check_feature_spec, load_artifact, read_card

pytestmark = pytest.mark.parametrize("generation", GENERATIONS)


@pytest.fixture
def kind() -> str:
    """Which of a generation's stores the tests read: ``local`` here, ``s3`` in tests/s3."""
    return "local"


@pytest.fixture
def store(generation, tmp_path) -> str:
    return f"file://{local_copy(generation, tmp_path / 'store')}"


@pytest.fixture
def ids(generation, kind) -> dict[str, str]:
    """Which version id played which part in that store: ``first``, ``refused``, ``seed7``."""
    return versions(generation, kind)


def test_models_list_reads_every_version_of_an_earlier_build(cli, store, ids):
    """Every version is listed with its verdict; the forced promotion is flagged with its reason."""
    result = cli("models", "list", "--store", store, "-o", "json")
    assert result.code == 0, result.err
    listing = result.json()
    assert listing["production"]["version"] == ids["first"]
    rows = {row["version"]: row for row in listing["versions"]}
    assert set(rows) == set(ids.values())
    assert rows[ids["first"]]["status"] == "production"
    assert rows[ids["seed7"]]["status"] == "passed"
    refused = rows[ids["refused"]]
    assert refused["status"] == "refused" and refused["forced"] is True
    assert refused["reason"].startswith("forced: fixture: promoted past its gate on purpose; accuracy ")
    table = cli("models", "list", "--store", store)
    assert table.code == 0 and all(v in table.out for v in ids.values())


def test_models_show_prints_each_earlier_card_as_written(cli, store, generation, kind, ids):
    """``models show -o json`` prints each card as it was written, embedded configuration included."""
    for version in ids.values():
        result = cli("models", "show", version, "--store", store, "-o", "json")
        assert result.code == 0, result.err
        assert result.json() == stored_card(generation, kind, version)
        table = cli("models", "show", version, "--store", store)
        assert table.code == 0 and "gate: " in table.out


def test_the_production_pointer_and_its_history_of_an_earlier_build_load(cli, store, ids):
    """The pointer's five moves, oldest first: promote, forced promote, rollback, promote, the canary's rollback."""
    result = cli("models", "history", "--store", store, "-o", "json")
    assert result.code == 0, result.err
    moves = result.json()
    assert [(m["action"], m["version"], m["forced"]) for m in moves] == [
        ("promote", ids["first"], False),
        ("promote", ids["refused"], True),
        ("rollback", ids["first"], False),
        ("promote", ids["seed7"], False),
        ("rollback", ids["first"], False),
    ]
    assert moves[1]["reason"] == "fixture: promoted past its gate on purpose"
    assert moves[-1]["reason"].startswith("canary aborted: requests 60/110")
    assert moves[3]["lineage"] == [ids["first"]] and moves[-1]["lineage"] == []


def test_rollout_records_of_an_earlier_build_load(store, ids):
    """The canary's and the shadow's entries, read by the rollout record reader and counted by the monitor."""
    from spamops.deploy.record import rollouts_of

    registry = Registry(open_store(store), MODEL)
    (canary,) = rollouts_of(registry, ids["seed7"])
    assert [(e.seq, e.action, e.weight) for e in canary] == [(0, "started", 10), (1, "advanced", 25), (2, "aborted", 0)]
    assert {e.stable_version for e in canary} == {ids["first"]}
    assert canary[1].check is not None and canary[1].check["verdict"] == "pass"
    assert canary[2].check is not None and canary[2].check["verdict"] == "fail"
    (shadow,) = rollouts_of(registry, ids["refused"])
    assert [e.action for e in shadow] == ["shadow-started", "shadow-stopped"]
    assert rollouts_of(registry, ids["first"]) == []
    seen, decisions = registry.rollout_decisions()  # what the monitor counts
    assert seen == set(ids.values())
    assert decisions == Counter(
        {
            (ids["seed7"], "started"): 1,
            (ids["seed7"], "advanced"): 1,
            (ids["seed7"], "aborted"): 1,
            (ids["refused"], "shadow-started"): 1,
            (ids["refused"], "shadow-stopped"): 1,
        }
    )


def test_dataset_snapshots_of_an_earlier_build_load_and_verify(store, ids):
    """Every snapshot a card names is there, matches its sha256 and decodes to the rows the card counts."""
    from spamops.training import snapshots

    registry = Registry(open_store(store), MODEL)
    for version in ids.values():
        card = registry.card(version)
        for ref in (card.datasets.train, card.datasets.test):
            X, y = snapshots.decode(registry.dataset(ref.sha256), ref.uri)
            assert len(y) == X.shape[0] == ref.rows
        assert card.datasets.train.rows == card.training.train_rows


def test_the_predictor_accepts_every_earlier_card(generation, kind, ids, tmp_path):
    """The serving side's card reader takes each card; without its model.joblib the load stops at the model."""
    for version in ids.values():
        model_dir = tmp_path / version
        model_dir.mkdir()
        (model_dir / CARD_FILE).write_text(json.dumps(stored_card(generation, kind, version)))
        card = read_card(model_dir)
        check_feature_spec(card, version)
        with pytest.raises(ArtifactError) as err:
            load_artifact(model_dir)
        assert err.value.reason == "missing_model"


def test_the_configuration_in_earlier_cards_reads_as_written(store, ids):
    """The embedded run configuration is read with the settings the old build used, non-default ones included."""
    registry = Registry(open_store(store), MODEL)
    refused = registry.card(ids["refused"]).config
    assert refused.gate.min_accuracy == 0.999 and refused.train.grid.n_neighbors == [3, 5, 7]
    # Renamed since: inconclusive_limit 2 (three checks, 60 s apart) and max_p99_seconds read as their successors.
    analysis = refused.rollout.analysis
    assert analysis.undecided_deadline == 180.0 and analysis.max_latency_seconds == 0.25
    assert registry.card(ids["seed7"]).config.train.seed == 7
    # Renamed since (spamops.config.RENAMED_SETTINGS): read under the new name, kept under the old one.
    first = registry.card(ids["first"]).config
    assert first.train.dask_connect_timeout_seconds == 30.0
    assert first.as_written is not None and first.as_written["train"]["dask_connect_timeout_s"] == 30.0
