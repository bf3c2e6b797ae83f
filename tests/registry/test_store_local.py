"""The local store: an impossible store fails before any work, and stored files follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def test_an_unwritable_store_fails_before_ingest_with_exit_2(cli, tmp_path):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    result = cli("train", "--store", a_file / "store")
    assert result.code == 2
    assert f"{a_file / 'store'}: store cannot be written (Not a directory)" in result.err
    assert "ingest:" not in result.err and "grid search" not in result.err  # nothing was read or trained


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only directory")
def test_a_read_only_directory_fails_before_ingest(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = cli("train", "--store", locked)
    assert result.code == 2 and "store cannot be written" in result.err


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_stored_files_follow_the_umask(cli, store, umask, mode):
    old = os.umask(umask)
    try:
        assert cli("train", "--store", store, "--quiet").code == 0
    finally:
        os.umask(old)
    files = [p for p in Path(store).rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}
