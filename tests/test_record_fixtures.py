"""Records written by earlier builds (committed under tests/fixtures/records) load in this one: local stores.

The same checks on an S3 store are in tests/s3/test_s3_record_fixtures.py.
"""

from __future__ import annotations

import json

import pytest

from recordfixtures import (
    GENERATIONS,
    assert_history,
    assert_models_list,
    assert_models_show,
    assert_rollout_records,
    assert_snapshots,
    local_copy,
    stored_card,
    versions,
)
from spamops.records import CARD_FILE
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.serving.artifact import ArtifactError, check_feature_spec, load_artifact, read_card

pytestmark = pytest.mark.parametrize("generation", GENERATIONS)


@pytest.fixture
def store(generation, tmp_path) -> str:
    return f"file://{local_copy(generation, tmp_path / 'store')}"


def test_models_list_reads_every_version_of_an_earlier_build(cli, store, generation):
    assert_models_list(cli, store, versions(generation, "local"))


def test_models_show_prints_each_earlier_card_as_written(cli, store, generation):
    assert_models_show(cli, store, generation, "local", versions(generation, "local"))


def test_the_production_pointer_and_its_history_of_an_earlier_build_load(cli, store, generation):
    assert_history(cli, store, versions(generation, "local"))


def test_rollout_records_of_an_earlier_build_load(store, generation):
    assert_rollout_records(store, versions(generation, "local"))


def test_dataset_snapshots_of_an_earlier_build_load_and_verify(store, generation):
    assert_snapshots(store, versions(generation, "local"))


def test_the_predictor_accepts_every_earlier_card(generation, tmp_path):
    """The serving side's card reader takes each card; without its model.joblib the load stops at the model."""
    ids = versions(generation, "local")
    for version in ids.values():
        model_dir = tmp_path / version
        model_dir.mkdir()
        (model_dir / CARD_FILE).write_text(json.dumps(stored_card(generation, "local", version)))
        card = read_card(model_dir)
        check_feature_spec(card, version)
        with pytest.raises(ArtifactError) as err:
            load_artifact(model_dir)
        assert err.value.reason == "missing_model"


def test_the_configuration_in_earlier_cards_reads_as_written(store, generation):
    """The embedded run configuration is read with the settings the old build used, non-default ones included."""
    registry = Registry(open_store(store), "spam")
    ids = versions(generation, "local")
    refused = registry.card(ids["refused"]).config
    assert refused.gate.min_accuracy == 0.999 and refused.train.grid.n_neighbors == [3, 5, 7]
    assert refused.rollout.analysis.inconclusive_limit == 2 and refused.rollout.analysis.max_p99_seconds == 0.25
    assert registry.card(ids["seed7"]).config.train.seed == 7
    # Renamed since (spamops.config.RENAMED_SETTINGS): read under the new name, kept under the old one.
    first = registry.card(ids["first"]).config
    assert first.train.dask_connect_timeout_seconds == 30.0
    assert first.as_written is not None and first.as_written["train"]["dask_connect_timeout_s"] == 30.0
