"""Records an earlier build wrote to S3 (committed under tests/fixtures/records) load in this one.

Each generation's S3 tree is uploaded, key for key, to the session's SeaweedFS bucket, where its
records name themselves (``s3://spamops/records-<generation>/...``); the checks are the local
stores' (tests/test_record_fixtures.py).
"""

from __future__ import annotations

import pytest

from recordfixtures import (
    GENERATIONS,
    assert_history,
    assert_models_list,
    assert_models_show,
    assert_rollout_records,
    assert_snapshots,
    s3_objects,
    s3_store_uri,
    versions,
)

pytestmark = [pytest.mark.s3, pytest.mark.parametrize("generation", GENERATIONS)]


@pytest.fixture
def store(generation, s3env) -> str:
    client = s3env.client()
    for (bucket, key), data in s3_objects(generation).items():
        assert bucket == s3env.bucket, (
            f"{generation}: records of bucket {bucket!r}, the test server has {s3env.bucket!r}"
        )
        client.put_object(Bucket=bucket, Key=key, Body=data)
    return s3_store_uri(generation)


def test_models_list_reads_every_version_an_earlier_build_wrote_to_s3(cli, store, generation):
    assert_models_list(cli, store, versions(generation, "s3"))


def test_models_show_prints_each_earlier_s3_card_as_written(cli, store, generation):
    assert_models_show(cli, store, generation, "s3", versions(generation, "s3"))


def test_the_s3_pointer_and_history_of_an_earlier_build_load(cli, store, generation):
    assert_history(cli, store, versions(generation, "s3"))


def test_s3_rollout_records_of_an_earlier_build_load(store, generation):
    assert_rollout_records(store, versions(generation, "s3"))


def test_s3_dataset_snapshots_of_an_earlier_build_load_and_verify(store, generation):
    assert_snapshots(store, versions(generation, "s3"))
