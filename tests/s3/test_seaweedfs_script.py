"""The SeaweedFS launcher (spamops_dev.seaweedfs, `make storage-*`): private files, no leaked handles, no stale exports."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from spamops_dev import seaweedfs

pytestmark = pytest.mark.s3
REPO = Path(__file__).resolve().parents[2]


def _no_chmod(monkeypatch) -> None:
    """Make a chmod after the write a no-op: the file must be private from its creation on."""
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kwargs: None)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_file_is_created_private(tmp_path, monkeypatch):
    _no_chmod(monkeypatch)
    server = seaweedfs.SeaweedFS.create(tmp_path)
    server.save()
    assert _mode(tmp_path / "server.json") == 0o600
    loaded = seaweedfs.SeaweedFS.load(tmp_path)
    assert loaded is not None and loaded.s3_port == server.s3_port


def test_existing_wider_state_file_is_narrowed(tmp_path):
    state = tmp_path / "server.json"
    state.write_text("{}")
    state.chmod(0o644)
    seaweedfs.SeaweedFS.create(tmp_path).save()
    assert _mode(state) == 0o600


def test_failed_start_leaves_private_secret_file_and_closes_the_log(tmp_path, monkeypatch):
    """Popen raising (say, weed vanished) must not leak the log handle; s3.json is 0600 from the start."""
    _no_chmod(monkeypatch)
    handed = []

    def popen_fails(args, **kwargs):
        handed.append(kwargs["stdout"])
        raise FileNotFoundError(args[0])

    monkeypatch.setattr(seaweedfs, "weed_binary", lambda: str(tmp_path / "no-weed"))
    monkeypatch.setattr(seaweedfs.subprocess, "Popen", popen_fails)
    server = seaweedfs.SeaweedFS.create(tmp_path / "data")
    with pytest.raises(FileNotFoundError):
        server.start()
    assert len(handed) == 1 and handed[0].closed, "the weed.log handle leaked"
    config = tmp_path / "data" / "s3.json"
    assert _mode(config) == 0o600
    assert server.secret_key in config.read_text()


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def test_storage_env_after_storage_down_refuses_instead_of_printing_stale_exports(tmp_path):
    """`eval "$(make -s storage-env)"` must not point a shell at a server that is gone."""
    data = tmp_path / "seaweedfs"
    (port,) = seaweedfs.free_ports(1)
    up = _make("storage-up", f"SEAWEEDFS_DIR={data}", f"SEAWEEDFS_PORT={port}")
    try:
        assert up.returncode == 0, up.stderr
        running = _make("-s", "storage-env", f"SEAWEEDFS_DIR={data}")
        assert running.returncode == 0, running.stderr
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in running.stdout.splitlines()
    finally:
        down = _make("storage-down", f"SEAWEEDFS_DIR={data}")
    assert down.returncode == 0 and "SeaweedFS stopped (pid" in down.stderr, down.stderr
    stale = _make("-s", "storage-env", f"SEAWEEDFS_DIR={data}")
    assert stale.returncode != 0
    assert stale.stdout == "", "no exports of a stopped server"
    assert f"no SeaweedFS running from {data} (stopped); 'make storage-up' starts it again" in stale.stderr
