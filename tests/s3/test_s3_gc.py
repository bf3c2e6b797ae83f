"""``spamops models gc`` on S3 (the real SeaweedFS): ages from LastModified, a train in progress kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from tcpproxy import TcpProxy

from spamops.registry.store import open_store
from spamops.registry.versions import LEASE_FILE, Registry

pytestmark = pytest.mark.s3


def _objects(s3env, s3_uri: str) -> dict[str, tuple[str, object]]:
    """Every object under the store root, probe and temporary ones too, with ETag and LastModified."""
    prefix = s3_uri.split("/", 3)[3] + "/"
    listing = s3env.client().list_objects_v2(Bucket=s3env.bucket, Prefix=prefix)
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listing.get("Contents", [])}


def _versions(cli, uri: str) -> dict[str, str]:
    listing = cli("models", "list", "--store", uri, "-o", "json")
    assert listing.code == 0, listing.err
    return {row["version"]: row["status"] for row in listing.json()["versions"]}


def test_gc_on_s3_removes_an_incomplete_version_and_temporaries_and_a_dry_run_changes_nothing(
    s3_uri, s3env, cli, seed_version, trained_files, tmp_path
):
    store = open_store(s3_uri)
    registry = Registry(store, "spam")
    production = seed_version(registry)
    assert cli("promote", production, "--store", s3_uri).code == 0
    # What an earlier build's crashed run leaves (it claimed ids by model.joblib alone, no lease) ...
    crashed = "spam_model_20200101_000000"
    store.put(f"spam/{crashed}/model.joblib", trained_files["model"], if_absent=True)
    # ... and a local store's leftover temporary file, copied over with the rest of it.
    store.put(f"spam/{production}/.tmp-k2j3h4g5", b"half a report", if_absent=True)
    assert _versions(cli, s3_uri)[crashed] == "incomplete"

    fresh = cli("models", "gc", "--store", s3_uri, "-o", "json")
    assert fresh.code == 0, fresh.err
    assert fresh.json()["removed"] == []  # default --older-than 1h: everything here is seconds old

    before = _objects(s3env, s3_uri)
    dry = cli("models", "gc", "--store", s3_uri, "--older-than", "0s", "--dry-run", "-o", "json")
    assert dry.code == 0, dry.err
    assert _objects(s3env, s3_uri) == before, "a dry run changes nothing"
    planned = dry.json()
    assert planned["dry_run"] is True
    assert [(g["kind"], g["uri"]) for g in planned["removed"]] == [
        ("incomplete version", f"{s3_uri}/spam/{crashed}/"),
        ("temporary object", f"{s3_uri}/spam/{production}/.tmp-k2j3h4g5"),
    ]
    assert planned["bytes"] == len(trained_files["model"]) + len(b"half a report")

    done = cli("models", "gc", "--store", s3_uri, "--older-than", "0s", "-o", "json")
    assert done.code == 0, done.err
    assert [g["uri"] for g in done.json()["removed"]] == [g["uri"] for g in planned["removed"]]
    after = _objects(s3env, s3_uri)
    assert set(before) - set(after) == {
        f"{s3_uri.split('/', 3)[3]}/spam/{crashed}/model.joblib",
        f"{s3_uri.split('/', 3)[3]}/spam/{production}/.tmp-k2j3h4g5",
    }
    assert _versions(cli, s3_uri) == {production: "production"}
    assert cli("models", "pull", production, tmp_path / "pulled", "--store", s3_uri).code == 0  # every file verified
    assert cli("gate", production, "--store", s3_uri).code == 0  # its snapshots are all there


class _HoldingProxy(TcpProxy):
    """Loopback TCP proxy to the real server that holds every GET of one key until released."""

    def __init__(self, upstream_port: int, held_path: bytes) -> None:
        self.held_path = held_path
        self.holding = threading.Event()  # a request is being held
        self.released = threading.Event()
        super().__init__(upstream_port)

    def on_chunk(self, chunk: bytes, upstream: bool) -> bool:
        if upstream and chunk.startswith(b"GET ") and self.held_path in chunk.split(b"\r\n", 1)[0]:
            self.holding.set()
            self.released.wait(timeout=300)
        return True

    def close(self) -> None:
        self.released.set()
        super().close()


def test_gc_with_no_age_limit_on_s3_keeps_the_version_a_train_is_writing(s3_uri, s3env, cli):
    first = cli("train", "--store", s3_uri, "--quiet", "-o", "json")
    assert first.code == 0, first.err
    production = first.json()["version"]
    sha = cli("models", "show", production, "--store", s3_uri, "-o", "json").json()["datasets"]["train"]["sha256"]
    # The next run on the same data stores the same training snapshot: create-only, so it reads the
    # existing one back to verify it - after it claimed its version, before it stores the model.
    proxy = _HoldingProxy(s3env.s3_port, f"/spam/datasets/{sha}.csv".encode())
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "SPAMOPS_S3_DEADLINE_SECONDS": "120"}
    run = subprocess.Popen(
        [sys.executable, "-m", "spamops", "train", "--store", s3_uri, "--force-new", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        while not proxy.holding.is_set():
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "the run never read its snapshot back"
            time.sleep(0.05)
        leases = [k for k in _objects(s3env, s3_uri) if k.endswith(f"/{LEASE_FILE}")]
        assert len(leases) == 1, leases
        writing = leases[0].rsplit("/", 2)[1]

        result = cli("models", "gc", "--store", s3_uri, "--older-than", "0s", "-o", "json")
        assert result.code == 0, result.err
        assert result.json()["removed"] == []
        assert [k["version"] for k in result.json()["kept"]] == [writing]
        assert run.poll() is None
    finally:
        proxy.close()  # releases the held read
        out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err
    assert json.loads(out)["version"] == writing
    assert _versions(cli, s3_uri)[writing] in ("passed", "production")
    assert not any(k.endswith(f"/{LEASE_FILE}") for k in _objects(s3env, s3_uri))  # given back at the end
