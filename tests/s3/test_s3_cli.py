"""The whole lifecycle through s3:// URIs with the spamops CLI, and S3 data sources."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from spamops.registry.store import open_store
from spamops.training.data import load_dataset
from spamops.training.demo_data import demo_data_path

pytestmark = pytest.mark.s3


def test_train_push_promote_list_pull_verify_rollback(s3_uri, s3env, cli, tmp_path):
    bucket, prefix = s3_uri[5:].split("/", 1)
    s3env.client().put_object(Bucket=bucket, Key=f"{prefix}-data/sms.csv", Body=demo_data_path().read_bytes())
    data_uri = f"s3://{bucket}/{prefix}-data/sms.csv"

    first = cli("train", "--store", s3_uri, "--data", data_uri, "--json", "--quiet")
    assert first.code == 0, first.err
    v1 = first.json()
    assert v1["promoted"] and v1["storage_uri"] == f"{s3_uri}/spam/{v1['version']}/"

    second = cli("train", "--store", s3_uri, "--data", data_uri, "--json", "--quiet", "--no-promote", "--force-new")
    assert second.code == 0, second.err
    v2 = second.json()["version"]
    assert v2 != v1["version"]

    assert cli("promote", v2, "--store", s3_uri).code == 0
    listed = cli("models", "list", "--store", s3_uri, "--json").json()
    assert listed["production"]["version"] == v2
    assert [(r["version"], r["status"]) for r in listed["versions"]] == [
        (v1["version"], "passed"),
        (v2, "production"),
    ]

    # The version prefix is the storageUri: exactly one model.joblib plus card and report.
    keys = open_store(s3_uri).list(f"spam/{v2}/")
    names = sorted(k.rsplit("/", 1)[1] for k in keys)
    assert names.count("model.joblib") == 1 and "model-card.json" in names and "report.md" in names

    card = cli("models", "show", v2, "--store", s3_uri, "--json").json()
    assert card["storage_uri"] == f"{s3_uri}/spam/{v2}/"
    assert card["data"]["sources"][0]["uri"] == data_uri

    pulled = cli("models", "pull", v2, tmp_path / "pulled", "--store", s3_uri)
    assert pulled.code == 0, pulled.err
    for name, digest in card["files"].items():
        assert hashlib.sha256((tmp_path / "pulled" / name).read_bytes()).hexdigest() == digest
    assert json.loads((tmp_path / "pulled" / "model-card.json").read_text())["sha256"] == card["sha256"]

    rolled = cli("rollback", "--store", s3_uri)
    assert rolled.code == 0, rolled.err
    production = cli("models", "list", "--store", s3_uri, "--json").json()["production"]
    assert production["version"] == v1["version"] and production["action"] == "rollback"
    history = open_store(s3_uri).list("spam/history/")
    assert len(history) == 3  # promote v1, promote v2, rollback to v1


def test_s3_source_has_the_same_fingerprint_as_the_local_file(s3_uri, s3env):
    local = demo_data_path()
    bucket, prefix = s3_uri[5:].split("/", 1)
    s3env.client().put_object(Bucket=bucket, Key=f"{prefix}/data/sms.csv", Body=local.read_bytes())
    remote = load_dataset([f"{s3_uri}/data/sms.csv"])
    here = load_dataset([str(local)])
    assert remote.fingerprint == here.fingerprint
    assert (remote.X == here.X).all() and (remote.y == here.y).all()
    r, h = remote.sources[0].to_json(), here.sources[0].to_json()
    assert r.pop("uri") == f"{s3_uri}/data/sms.csv" and h.pop("uri") == str(local)
    assert r == h


def test_missing_s3_source_is_bad_input(s3_uri, cli):
    result = cli("train", "--store", s3_uri, "--data", f"{s3_uri}/nope.csv", "--quiet")
    assert result.code == 2
    assert f"{s3_uri}/nope.csv: object does not exist" in result.err


def test_kserve_storage_initializer_downloads_the_version_prefix(s3_uri, s3env, seed_version, tmp_path):
    """KServe's own downloader, given the same env, fetches exactly the files the card lists."""
    storage = pytest.importorskip("kserve_storage")
    from spamops.records import CARD_FILE
    from spamops.registry.versions import Registry

    registry = Registry(open_store(s3_uri), "spam")
    version = seed_version(registry)
    # A sibling in the same second is named <version>_2: a prefix match without the trailing
    # slash would drag its files into the download too.
    stamp = datetime.strptime(version.removeprefix("spam_model_"), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    assert registry.reserve_version(stamp, b"sibling") == f"{version}_2"
    card = registry.card(version)
    assert card.storage_uri.endswith(f"/{version}/")
    out = tmp_path / "mnt-models"
    out.mkdir()
    storage.Storage.download(card.storage_uri, str(out))
    got = {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()
    }
    assert got.pop(CARD_FILE)
    assert got == card.files


def test_dataset_snapshots_are_shared_and_verified_on_s3(s3_uri, s3env, cli):
    first = cli("train", "--store", s3_uri, "--json", "--quiet")
    second = cli("train", "--store", s3_uri, "--json", "--quiet", "--force-new", "--no-promote")
    assert first.code == 0 and second.code == 0, second.err
    cards = [cli("models", "show", r.json()["version"], "--store", s3_uri, "--json").json() for r in (first, second)]
    assert cards[0]["datasets"] == cards[1]["datasets"]
    keys = open_store(s3_uri).list("spam/datasets/")
    assert sorted(keys) == sorted(f"spam/datasets/{cards[0]['datasets'][s]['sha256']}.csv" for s in ("train", "test"))

    rerun = cli("gate", second.json()["version"], "--store", s3_uri, "--json")
    assert rerun.code == 0, rerun.err
    assert [r["rule"] for r in rerun.json()["rules"]][-2:] == [
        "champion_on_challenger_rows",
        "champion_on_champion_rows",
    ]

    sha = cards[0]["datasets"]["test"]["sha256"]
    bucket, prefix = s3_uri[5:].split("/", 1)
    s3env.client().put_object(Bucket=bucket, Key=f"{prefix}/spam/datasets/{sha}.csv", Body=b"label,length,punct\n")
    tampered = cli("gate", second.json()["version"], "--store", s3_uri)
    assert tampered.code == 1
    assert f"{s3_uri}/spam/datasets/{sha}.csv: dataset snapshot was altered" in tampered.err
