"""Faults against the real server: a crash mid-upload, racing promoters, tampering, outages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from spamops.errors import ConflictError
from spamops.records import MODEL_FILE
from spamops.registry.store import open_store
from spamops.registry.store.s3 import S3Store
from spamops.registry.versions import Registry

pytestmark = pytest.mark.s3


def _list(cli, uri: str) -> dict:
    result = cli("models", "list", "--store", uri, "--json")
    assert result.code == 0, result.err
    return result.json()


def test_server_killed_mid_upload_fails_cleanly_and_a_rerun_succeeds(s3_uri, s3env, cli, monkeypatch, seed_version):
    registry = Registry(open_store(s3_uri), "spam")
    first = seed_version(registry)
    assert cli("promote", first, "--store", s3_uri).code == 0
    before = _list(cli, s3_uri)
    assert before["production"]["version"] == first

    real_put = S3Store.put
    killed = []

    def put_then_crash(self, key, data, **kwargs):
        # model.joblib is already stored (the version is reserved); the server dies before the rest.
        if key.endswith("/report.md") and not killed:
            s3env.kill()
            killed.append(key)
        return real_put(self, key, data, **kwargs)

    monkeypatch.setattr(S3Store, "put", put_then_crash)
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "2")
    try:
        crashed = cli("train", "--store", s3_uri, "--quiet", "--force-new")
    finally:
        monkeypatch.setattr(S3Store, "put", real_put)
        s3env.start()
    assert killed, "the upload never reached the crash point"
    assert crashed.code == 1, crashed.err
    assert "report.md: cannot write it" in crashed.err and "gave up after 2 s" in crashed.err
    assert s3env.endpoint in crashed.err and "Traceback" not in crashed.err

    after = _list(cli, s3_uri)
    assert after["production"] == before["production"], "production must not move"
    statuses = {row["version"]: row["status"] for row in after["versions"]}
    half = [v for v, status in statuses.items() if status == "incomplete"]
    assert len(half) == 1 and len(statuses) == 2
    refused = cli("promote", half[0], "--store", s3_uri)
    assert refused.code == 2 and "no complete version" in refused.err

    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "10")
    rerun = cli("train", "--store", s3_uri, "--json", "--quiet", "--force-new")
    assert rerun.code == 0, rerun.err
    final = _list(cli, s3_uri)
    assert final["production"]["version"] == rerun.json()["version"]
    assert sorted(row["status"] for row in final["versions"]) == ["incomplete", "passed", "production"]


def test_short_outage_is_ridden_out_by_retries(s3_uri, s3env, monkeypatch):
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "40")
    store = open_store(s3_uri)
    token = store.put("pointer", b"v1", if_absent=True)
    s3env.kill()
    restart = threading.Timer(1.0, s3env.start)
    restart.start()
    try:
        start = time.monotonic()
        store.put("pointer", b"v2", if_token=token)
        waited = time.monotonic() - start
    finally:
        restart.join()
    assert waited > 1.0, "the write cannot have succeeded while the server was down"
    assert store.get("pointer").data == b"v2"


_PROMOTER = textwrap.dedent(
    """
    import sys, time
    from spamops.cli import main
    start_at, version, uri = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    from spamops.registry.versions import Registry  # imports done before the start line
    from spamops.registry.store.s3 import S3Store
    time.sleep(max(0.0, start_at - time.time()))
    sys.exit(main(["promote", version, "--store", uri]))
    """
)


def test_two_promoters_at_the_same_moment_lose_no_update(s3_uri, s3env, seed_version, cli):
    registry = Registry(open_store(s3_uri), "spam")
    base, a, b = (seed_version(registry) for _ in range(3))
    assert registry.promote(base) is not None

    start_at = time.time() + 3.0
    env = {**os.environ, "SPAMOPS_S3_DEADLINE_SECONDS": "10"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROMOTER, str(start_at), version, s3_uri],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in (a, b)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0], results

    pointer = registry.production()
    history = registry.history()
    assert sorted(h.version for h in history) == sorted([base, a, b])
    winner = pointer.version
    loser = a if winner == b else b
    assert winner in (a, b)
    # The later move was made on top of the earlier one: nothing was overwritten blindly.
    assert pointer.previous_version == loser and pointer.lineage == [loser, base]
    assert cli("rollback", "--store", s3_uri).code == 0
    assert registry.production().version == loser


def test_many_threads_promoting_keep_one_linear_history(s3_uri, s3env, seed_version):
    setup = Registry(open_store(s3_uri), "spam")
    versions = [seed_version(setup) for _ in range(3)]
    barrier = threading.Barrier(4)
    moved = []
    errors = []

    def promoter(n: int) -> None:
        registry = Registry(open_store(s3_uri), "spam")  # its own client, like its own process
        barrier.wait()
        for i in range(4):
            try:
                if registry.promote(versions[(n + i) % len(versions)]) is not None:
                    moved.append(n)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=promoter, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    pointer = setup.production()
    history = setup.history()
    # Every successful move is in the history, and each was made on top of the one before it:
    # a lost update would leave the pointer's lineage shorter than the history.
    assert len(history) == len(moved) >= 2
    assert len(pointer.lineage) + 1 == len(history)


def test_tampered_model_is_refused_at_pull_and_promote(s3_uri, s3env, seed_version, cli, tmp_path):
    registry = Registry(open_store(s3_uri), "spam")
    version = seed_version(registry)
    bucket, prefix = s3_uri[5:].split("/", 1)
    key = f"{prefix}/spam/{version}/{MODEL_FILE}"
    client = s3env.client()
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    tampered = original[:-16] + b"\x00" * 16  # same size, different bytes
    client.put_object(Bucket=bucket, Key=key, Body=tampered)

    dest = tmp_path / "pulled"
    pulled = cli("models", "pull", version, dest, "--store", s3_uri)
    assert pulled.code == 1
    assert f"{MODEL_FILE}: checksum mismatch" in pulled.err
    assert not (dest / MODEL_FILE).exists()

    promoted = cli("promote", version, "--store", s3_uri)
    assert promoted.code == 1 and "altered" in promoted.err
    assert registry.production() is None


def test_existing_version_prefix_is_immutable(s3_uri, s3env, seed_version):
    registry = Registry(open_store(s3_uri), "spam")
    version = seed_version(registry)
    with pytest.raises(ConflictError):
        registry.store.put(f"spam/{version}/{MODEL_FILE}", b"replacement", if_absent=True)


def test_two_trainers_at_the_same_moment_both_land(s3_uri, s3env):
    """Two full training runs race: version ids, uploads and promotions must all survive."""
    env = {**os.environ, "SPAMOPS_S3_DEADLINE_SECONDS": "20"}
    cmd = [sys.executable, "-m", "spamops", "train", "--store", s3_uri, "--quiet", "--json", "--force-new"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0], results
    versions = {json.loads(r[1])["version"] for r in results}
    assert len(versions) == 2, f"each run must get its own version id: {results}"
    print("raced versions:", sorted(versions))

    registry = Registry(open_store(s3_uri), "spam")
    assert sorted(v.version for v in registry.versions() if v.complete) == sorted(versions)
    history = registry.history()
    assert sorted(h.version for h in history) == sorted(versions)
    pointer = registry.production()
    (other,) = versions - {pointer.version}
    assert pointer.lineage == [other]


def test_an_endpoint_that_is_down_is_announced_once_while_retrying(s3_uri, s3env, monkeypatch):
    """Retries until the deadline are not silent: one stderr line says what, where and until when."""
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "6")
    s3env.kill()
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "spamops", "models", "list", "--store", s3_uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = run.stderr.readline()
        still_waiting = run.poll() is None
        rest = run.stderr.read()
        run.wait(timeout=60)
    finally:
        s3env.start()
    assert still_waiting, "the line must come while it retries, not with the final error"
    assert first.startswith(f"spamops: {s3_uri}/spam/production.json: cannot read it yet: ")
    assert f"endpoint {s3env.endpoint}, bucket 'spamops'" in first
    assert re.search(r"retrying until \d\d:\d\d:\d\d UTC \(6 s, SPAMOPS_S3_DEADLINE_SECONDS\)$", first.strip()), first
    assert run.returncode == 1
    (error,) = rest.splitlines()  # then the one error line, and nothing else
    assert error.startswith("spamops: error: ") and "gave up after 6 s of retries" in error
