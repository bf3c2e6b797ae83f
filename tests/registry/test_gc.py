"""``spamops models gc`` on a local store: what interrupted runs leave goes, nothing anyone needs does.

Runs that are stopped for real (``spamops train`` processes, held at a point the store shows)
make the garbage; gc runs as a user runs it.  The S3 side is tests/s3/test_s3_gc.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spamops.records import RolloutEntry
from spamops.registry.store import open_store
from spamops.registry.versions import LEASE_FILE, Registry

SPAMOPS = (sys.executable, "-m", "spamops")
HOUR = 3600


def _versions(cli, store) -> dict[str, str]:
    listing = cli("models", "list", "--store", store, "-o", "json")
    assert listing.code == 0, listing.err
    return {row["version"]: row["status"] for row in listing.json()["versions"]}


def _tree(store: Path) -> dict[str, tuple[int, int]]:
    """Every file (temporary ones too) with its size and mtime: what "changes nothing" compares."""
    return {
        p.relative_to(store).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in store.rglob("*")
        if p.is_file()
    }


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _age_tree(path: Path, seconds: float) -> None:
    for p in [path, *path.rglob("*")]:
        if p.is_file():
            _age(p, seconds)


def _wait(check, what: str, proc: subprocess.Popen | None = None, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


class HeldTrain:
    """``spamops train --force-new`` held on its way to store a version: its training snapshot (which
    the first run stored) is replaced by a FIFO, which the new run reads back (create-only write,
    then verify) after it claimed its version id and before it stores the model."""

    def __init__(self, store: Path, snapshot_sha: str) -> None:
        self.snapshot = store / "spam" / "datasets" / f"{snapshot_sha}.csv"
        self.data = self.snapshot.read_bytes()
        self.snapshot.unlink()
        os.mkfifo(self.snapshot)
        self.store = store
        self.proc = subprocess.Popen(
            [*SPAMOPS, "train", "--store", store, "--force-new", "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def claimed(self) -> str:
        """The version the run claimed (its lease is in the store), once it has."""
        leases = _wait(lambda: list((self.store / "spam").glob(f"*/{LEASE_FILE}")), "a lease", self.proc)
        return leases[0].parent.name

    def release(self) -> tuple[int, str, str]:
        with open(self.snapshot, "wb") as fifo:  # the run reads the real bytes, and goes on
            fifo.write(self.data)
        out, err = self.proc.communicate(timeout=180)
        self.restore()
        return self.proc.returncode, out, err

    def restore(self) -> None:
        if self.snapshot.is_fifo():
            tmp = self.snapshot.with_name(".restore")
            tmp.write_bytes(self.data)
            os.replace(tmp, self.snapshot)


@pytest.fixture
def trained(cli, store) -> tuple[Path, str, str]:
    """A store with production V1 (its lineage: V0) and the first run's training snapshot sha."""
    first = cli("train", "--store", store, "--quiet", "-o", "json")
    assert first.code == 0, first.err
    second = cli("train", "--store", store, "--quiet", "--force-new", "--no-promote", "-o", "json")
    assert second.code == 0, second.err
    v0, v1 = first.json()["version"], second.json()["version"]
    assert cli("promote", v1, "--store", store).code == 0
    card = cli("models", "show", v0, "--store", store, "-o", "json").json()
    return store, v1, card["datasets"]["train"]["sha256"]


def test_a_killed_run_and_orphaned_temporaries_go_after_the_cutoff_and_a_dry_run_changes_nothing(cli, trained):
    store, production, sha = trained
    held = HeldTrain(store, sha)
    try:
        crashed = held.claimed()
        held.proc.kill()  # SIGKILL: no cleanup, the version stays incomplete with its lease
        held.proc.wait(timeout=30)
    finally:
        held.restore()
    orphan = store / "spam" / production / ".tmp-3k2j1h0g"  # a write that died between temp file and rename
    orphan.write_bytes(b"half a report")
    assert _versions(cli, store)[crashed] == "incomplete"

    fresh = cli("models", "gc", "--store", store, "-o", "json").json()  # default --older-than 1h: all too young
    assert fresh["removed"] == [] and fresh["older_than_seconds"] == HOUR
    protected = cli("models", "gc", "--store", store, "--older-than", "0s", "-o", "json").json()
    # (a run killed mid-write may leave a temporary file of its own beside ours: also garbage)
    assert {g["kind"] for g in protected["removed"]} == {"temporary object"}
    assert orphan.as_uri() in [g["uri"] for g in protected["removed"]]
    # the killed run's lease is fresh: gc cannot tell it from a run still writing
    assert [(k["version"], k["reason"].split(" (")[0]) for k in protected["kept"]] == [(crashed, "being written")]
    assert not orphan.exists()

    orphan.write_bytes(b"half a report")
    _age_tree(store / "spam" / crashed, 2 * HOUR)  # an hour later: the lease has expired
    _age(orphan, 2 * HOUR)
    before = _tree(store)
    dry = cli("models", "gc", "--store", store, "--dry-run")
    assert dry.code == 0, dry.err
    assert _tree(store) == before, "a dry run changes nothing"
    lines = dry.out.splitlines()
    assert lines[0].startswith(f"would remove incomplete version {crashed}: {(store / 'spam' / crashed).as_uri()}/ (")
    assert lines[1].startswith(f"would remove temporary object: {orphan.as_uri()} (1 object(s), 13 B,")
    assert lines[-1].endswith("(dry run: nothing was changed)")

    result = cli("models", "gc", "--store", store, "-o", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)  # one document
    assert (doc["dry_run"], doc["objects"]) == (False, len(before) - len(_tree(store)))
    assert [(g["kind"], g["version"]) for g in doc["removed"]] == [
        ("incomplete version", crashed),
        ("temporary object", None),
    ]
    assert not (store / "spam" / crashed).exists() and not orphan.exists()
    versions = _versions(cli, store)
    assert crashed not in versions and versions[production] == "production" and len(versions) == 2
    assert (store / "spam" / "datasets" / f"{sha}.csv").read_bytes() == held.data  # snapshots stay
    again = cli("models", "gc", "--store", store, "--older-than", "0s", "-o", "json").json()
    assert again["removed"] == []


def test_gc_never_removes_what_the_pointer_its_history_or_a_rollout_record_names(cli, trained):
    store, production, _ = trained
    registry = Registry(open_store(str(store)), "spam")
    lineage = registry.production().lineage[0]
    # Damage both: their cards gone, they look incomplete, yet the pointer and its history name them.
    for version in (production, lineage):
        (store / "spam" / version / "model-card.json").unlink()
    canary = "spam_model_20200101_000000"  # incomplete, named only by a rollout record
    (store / "spam" / canary).mkdir()
    (store / "spam" / canary / "model.joblib").write_bytes(b"not yet")
    entry = RolloutEntry(
        rollout_id="20200101T000000Z-abcd",
        seq=0,
        inference_service="spam",
        mode="standard",
        stable_version=production,
        canary_version=canary,
        action="started",
        weight=10,
    )
    record = store / "spam" / production / "rollouts" / entry.rollout_id / "0000-started.json"
    record.parent.mkdir(parents=True)
    record.write_text(entry.model_dump_json())
    _age_tree(store / "spam", 2 * HOUR)
    before = _tree(store)

    result = cli("models", "gc", "--store", store, "--older-than", "0s", "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["removed"] == []
    assert {k["version"]: k["reason"] for k in doc["kept"]} == {
        canary: f"named by rollout record {entry.rollout_id}",
        lineage: "named by the pointer's lineage",
        production: "named by the production pointer",
    }
    assert _tree(store) == before


def test_gc_with_no_age_limit_during_a_train_keeps_the_version_being_written(cli, trained):
    store, production, sha = trained
    held = HeldTrain(store, sha)
    try:
        writing = held.claimed()
        result = cli("models", "gc", "--store", store, "--older-than", "0s", "-o", "json")
        assert result.code == 0, result.err
        assert result.json()["removed"] == []
        assert [k["version"] for k in result.json()["kept"]] == [writing]
        code, out, err = held.release()
    finally:
        held.restore()
        if held.proc.poll() is None:
            held.proc.kill()
    assert code == 0, err
    assert json.loads(out)["version"] == writing
    versions = _versions(cli, store)
    assert versions[writing] in ("passed", "production")
    assert not (store / "spam" / writing / LEASE_FILE).exists(), "a finished run gives its lease back"
    assert cli("gate", writing, "--store", store).code == 0  # complete and judged on its snapshots


def test_a_stopped_train_leaves_no_half_version_and_a_failed_one_no_empty_store(cli, trained, tmp_path):
    store, production, sha = trained
    held = HeldTrain(store, sha)
    try:
        writing = held.claimed()
        held.proc.send_signal(signal.SIGTERM)
        _, err = held.proc.communicate(timeout=120)
    finally:
        held.restore()
    assert held.proc.returncode == 143, err
    assert not (store / "spam" / writing).exists(), "the stopped run removed what it had stored of its version"
    assert writing not in _versions(cli, store)

    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,dataset\n")
    new_store = tmp_path / "new" / "store"
    failed = cli("train", "--store", new_store, "--data", bad)
    assert failed.code == 2, failed.err
    assert not (tmp_path / "new").exists(), "a failed run leaves no empty store directory"
