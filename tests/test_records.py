"""The model card, the production pointer and the rollout record are typed records: they round-trip, a bad one
is refused by name, and one from a newer writer is read as far as this build knows it (docs/model-card.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spamops.records import (
    ModelCard,
    ProductionPointer,
    card_json_schema_text,
    dump_record,
    parse_card,
    parse_pointer,
)
from spamops.serving.artifact import ArtifactError, load_artifact

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "docs" / "model-card.schema.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A store with one promoted demo version: (store, version)."""
    from spamops.cli import main

    store = tmp_path_factory.mktemp("records") / "store"
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    (version,) = [p.name for p in (store / "spam").iterdir() if p.name.startswith("spam_model_")]
    return store, version


def _card_path(store: Path, version: str) -> Path:
    return store / "spam" / version / "model-card.json"


def test_card_and_pointer_round_trip_byte_for_byte(trained):
    store, version = trained
    raw = _card_path(store, version).read_bytes()
    card = parse_card(raw, "card")
    assert isinstance(card, ModelCard) and card.version == version and card.schema_version == 1
    assert dump_record(card) == raw
    assert parse_card(dump_record(card), "again") == card

    pointer_raw = (store / "spam" / "production.json").read_bytes()
    pointer = parse_pointer(pointer_raw, "pointer")
    assert isinstance(pointer, ProductionPointer) and pointer.version == version and pointer.action == "promote"
    assert dump_record(pointer) == pointer_raw


def test_the_committed_json_schema_is_generated_from_the_card_model(cli):
    result = cli("models", "schema")
    assert result.code == 0
    assert result.out == card_json_schema_text()
    assert SCHEMA_FILE.read_text() == result.out, (
        "docs/model-card.schema.json is stale: run 'spamops models schema > docs/model-card.schema.json'"
    )
    schema = json.loads(result.out)
    assert {"datasets", "gate", "metrics", "sha256"} <= set(schema["required"])
    assert schema["properties"]["schema_version"]["const"] == 1


def _damaged(store: Path, version: str, tmp_path: Path, damage) -> Path:
    """A copy of the store whose card was edited by ``damage(card_dict)``."""
    import shutil

    copy = tmp_path / "damaged-store"
    shutil.copytree(store, copy)
    path = _card_path(copy, version)
    card = json.loads(path.read_text())
    damage(card)
    path.write_text(json.dumps(card))
    return copy


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda c: c["metrics"].update(spam_f1="high"), "metrics.spam_f1 must be a number"),
        (lambda c: c.pop("datasets"), "'datasets' is missing"),
        (lambda c: c["gate"].update(passed="yes"), "gate.passed must be true or false"),
        (lambda c: c.update(schema_version=99), "'schema_version' 99 is newer than this spamops reads (1); upgrade"),
    ],
    ids=["wrong-type", "missing-field", "string-for-bool", "unknown-schema"],
)
def test_a_bad_card_is_refused_naming_the_field_in_models_show(trained, tmp_path, cli, damage, words):
    store, version = trained
    copy = _damaged(store, version, tmp_path, damage)
    result = cli("models", "show", version, "--store", copy)
    assert result.code == 2, result.err
    assert "invalid model card" in result.err and words in result.err
    listing = cli("models", "list", "--store", copy, "--json")
    assert listing.code == 0
    (row,) = listing.json()["versions"]
    assert row["status"] == "invalid" and words in row["reason"]


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda c: c.pop("gate"), "'gate' is missing"),
        (lambda c: c["feature_statistics"]["punct"].update(std=None), "feature_statistics.punct.std must be a number"),
    ],
    ids=["missing-gate", "null-std"],
)
def test_a_bad_card_is_refused_naming_the_field_at_predictor_load(trained, tmp_path, cli, damage, words):
    store, version = trained
    model_dir = tmp_path / "model"
    assert cli("models", "pull", version, model_dir, "--store", store).code == 0
    assert load_artifact(model_dir).version == version  # intact: loads
    path = model_dir / "model-card.json"
    card = json.loads(path.read_text())
    damage(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ArtifactError) as err:
        load_artifact(model_dir)
    assert err.value.reason == "bad_card" and words in str(err.value)


def _from_a_newer_writer(card: dict) -> None:
    """What a later build of the same schema version may add: optional fields, and settings."""
    card["calibration"] = {"method": "isotonic", "brier": 0.041}
    card["metrics"]["brier"] = 0.041
    card["config"]["train"]["calibrate"] = True
    card["config"]["rollout"]["analysis"]["judge"] = {"kind": "mann-whitney"}


def test_a_card_from_a_newer_writer_of_the_same_version_is_listed_shown_and_served(trained, tmp_path, cli):
    store, version = trained
    copy = _damaged(store, version, tmp_path, _from_a_newer_writer)
    written = json.loads(_card_path(copy, version).read_text())
    listing = cli("models", "list", "--store", copy, "--json")
    assert listing.code == 0
    (row,) = listing.json()["versions"]
    assert row["status"] == "production"
    shown = cli("models", "show", version, "--store", copy, "-o", "json")
    assert shown.code == 0 and shown.json() == written  # what it does not know is kept, not dropped
    model_dir = tmp_path / "model"
    assert cli("models", "pull", version, model_dir, "--store", copy).code == 0
    assert json.loads((model_dir / "model-card.json").read_text()) == written
    artifact = load_artifact(model_dir)
    assert artifact.version == version and artifact.card.config.train.seed == 42


def test_a_card_whose_configuration_has_a_bad_value_is_refused_naming_the_setting(trained, tmp_path, cli):
    store, version = trained
    copy = _damaged(store, version, tmp_path, lambda c: c["config"]["train"].update(cv_folds="five"))
    result = cli("models", "show", version, "--store", copy)
    assert result.code == 2
    assert "invalid model card (schema 1): config.train.cv_folds input should be a valid integer" in result.err


def test_rollout_entries_are_written_with_their_schema_version_and_a_newer_one_is_refused(trained, tmp_path):
    from spamops.deploy.record import RolloutLog, rollouts_of
    from spamops.records import ROLLOUT_SCHEMA, RecordError, RolloutEntry
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    store, version = trained
    registry = Registry(open_store(str(store)), "spam")
    log = RolloutLog(registry, version, "20270101T000000Z-abcdef")
    entry = RolloutEntry(
        rollout_id="20270101T000000Z-abcdef",
        seq=0,
        inference_service="spamops/spam",
        mode="serverless",
        stable_version=None,
        canary_version=version,
        action="started",
        weight=10,
    )
    key = log.append(entry)
    assert json.loads(registry.store.get(key).data)["schema_version"] == ROLLOUT_SCHEMA == 1
    assert log.entries() == [entry]
    newer = {**json.loads(registry.store.get(key).data), "schema_version": 2, "seq": 1, "action": "advanced"}
    registry.store.put(key.replace("0000-started", "0001-advanced"), json.dumps(newer).encode())
    with pytest.raises(RecordError) as err:
        rollouts_of(registry, version)
    assert "0001-advanced.json: invalid rollout record (schema 1): 'schema_version' 2 is newer" in str(err.value)


def test_an_older_record_is_migrated_step_by_step_before_it_is_validated():
    """records.read_stored with a migration table: a real version-1 pointer (tests/fixtures) read as a version 3."""
    from typing import Literal

    from recordfixtures import FIXTURES
    from spamops.records import Record, StoredKind, read_stored

    class PointerV3(Record):  # as if two later versions renamed `version` and then split `action`
        schema_version: Literal[3] = 3
        production_version: str
        moved_by: str
        forced: bool

    def one_to_two(doc: dict) -> dict:
        return {
            **{k: v for k, v in doc.items() if k != "version"},
            "production_version": doc["version"],
            "schema_version": 2,
        }

    def two_to_three(doc: dict) -> dict:
        return {**{k: v for k, v in doc.items() if k != "action"}, "moved_by": doc["action"], "schema_version": 3}

    kind = StoredKind(PointerV3, "production pointer", 3, {1: one_to_two, 2: two_to_three})
    path = FIXTURES / "v1" / "local" / "spam" / "production.json"
    written = json.loads(path.read_text())
    pointer = read_stored(kind, path.read_bytes(), str(path))
    assert (pointer.production_version, pointer.moved_by, pointer.forced) == (written["version"], "rollback", False)
    assert pointer.model_extra is not None and pointer.model_extra["lineage"] == written["lineage"]  # kept, unchecked
