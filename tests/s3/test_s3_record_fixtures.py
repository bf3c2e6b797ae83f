"""Records an earlier build wrote to S3 (committed under tests/fixtures/records) load in this one.

Each generation's S3 tree is uploaded, key for key, to the session's SeaweedFS bucket, where its
records name themselves (``s3://spamops/records-<generation>/...``); the tests are the local
stores' (tests/test_record_fixtures.py), collected here against that store.
"""

from __future__ import annotations

import pytest

from recordfixtures import GENERATIONS, s3_objects, s3_store_uri
from test_record_fixtures import (  # noqa: F401 - collected here: they run with this module's fixtures
    ids,
    test_dataset_snapshots_of_an_earlier_build_load_and_verify,
    test_models_list_reads_every_version_of_an_earlier_build,
    test_models_show_prints_each_earlier_card_as_written,
    test_rollout_records_of_an_earlier_build_load,
    test_the_configuration_in_earlier_cards_reads_as_written,
    test_the_production_pointer_and_its_history_of_an_earlier_build_load,
)

pytestmark = [pytest.mark.s3, pytest.mark.parametrize("generation", GENERATIONS)]


@pytest.fixture
def kind() -> str:
    return "s3"


@pytest.fixture
def store(generation, s3env) -> str:
    client = s3env.client()
    for (bucket, key), data in s3_objects(generation).items():
        assert bucket == s3env.bucket, (
            f"{generation}: records of bucket {bucket!r}, the test server has {s3env.bucket!r}"
        )
        client.put_object(Bucket=bucket, Key=key, Body=data)
    return s3_store_uri(generation)
