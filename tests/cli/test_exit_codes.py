"""User errors are exit 2 with one line naming the input and the fix, never "unexpected error" (exit 1).

The training Job's podFailurePolicy retries exit 1 and fails the Job on 2, so a wrong kubeconfig,
an impossible download directory or a read-only store must not be retried as if it were a crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spamops_dev.ports import free_port


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": server}}],
                "users": [{"name": "x", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
            }
        )
    )
    return path


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "unexpected error" not in lines[0], lines[0]
    return lines[0]


def test_trigger_data_with_a_malformed_kubeconfig_is_exit_2_like_rollout(cli, store, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("foo: [bar\n")
    trigger = cli("trigger", "data", "--store", store, "--kubeconfig", bad)
    rollout = cli("rollout", "status", "--store", store, "--kubeconfig", bad)
    assert (trigger.code, rollout.code) == (2, 2)
    assert _one_line(trigger.err) == _one_line(rollout.err)
    assert _one_line(trigger.err).startswith(f"spamops: error: kubeconfig {bad}: cannot use it (")
    assert "check the file and --context" in trigger.err


def test_trigger_data_with_an_unreachable_api_server_says_rollouts_one_line(cli, store, tmp_path):
    server = f"https://127.0.0.1:{free_port()}"
    dead = _kubeconfig(tmp_path / "dead.yaml", server)
    trigger = cli("trigger", "data", "--store", store, "--kubeconfig", dead)
    rollout = cli("rollout", "status", "--store", store, "--kubeconfig", dead)
    assert (trigger.code, rollout.code) == (1, 1)  # an outage: the Job may retry it
    assert _one_line(trigger.err) == _one_line(rollout.err)
    line = _one_line(trigger.err)
    assert line.startswith(f"spamops: error: API server {server} unreachable (")
    assert line.endswith("check --kubeconfig/--context and that the cluster is up")
    for raw in ("MaxRetryError", "HTTPSConnectionPool", "object at 0x", "urllib3"):
        assert raw not in line


def test_pull_into_a_directory_that_cannot_be_created_is_exit_2_naming_it(cli, store):
    assert cli("train", "--store", store, "--quiet").code == 0
    (version,) = [v["version"] for v in cli("models", "list", "--store", store, "-o", "json").json()["versions"]]
    result = cli("models", "pull", version, "/proc/nonexist/x", "--store", store)
    assert result.code == 2
    line = _one_line(result.err)
    assert line.startswith("spamops: error: /proc/nonexist/x: cannot write the version there (No such file")
    assert line.endswith("choose a writable DIR")


def _read_only(store: Path, *args: str) -> subprocess.CompletedProcess:
    """``spamops ARGS`` as a separate process that cannot write into ``store`` (and nothing else changes).

    Root writes through permission bits, so as root the store is bind-mounted read-only in a
    private mount namespace; anyone else gets the write bits removed for the run.
    """
    cmd = [sys.executable, "-m", "spamops", *args]
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [store, *store.rglob("*")]}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    if shutil.which("unshare") is None:
        pytest.skip("root needs unshare(1) to make a read-only store")
    wrapped = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(store), *cmd]
    result = subprocess.run(wrapped, capture_output=True, text=True, timeout=120)
    if "mount:" in result.stderr or "unshare:" in result.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {result.stderr.strip()}")
    return result


def test_promote_and_rollback_on_a_read_only_store_are_exit_2_like_train(cli, store):
    assert cli("train", "--store", store, "--quiet").code == 0
    assert cli("train", "--store", store, "--quiet", "--no-promote", "--force-new").code == 0
    first, second = [v["version"] for v in cli("models", "list", "--store", store, "-o", "json").json()["versions"]]
    assert cli("promote", second, "--store", store).code == 0  # a lineage to roll back through
    before = sorted(p.relative_to(store) for p in store.rglob("*"))

    for args in (("promote", first), ("rollback",), ("train", "--quiet")):
        result = _read_only(store, *args, "--store", str(store))
        assert result.returncode == 2, (args, result.stderr)
        line = _one_line(result.stderr)
        assert line.startswith(f"spamops: error: {store}: store cannot be written (")
        assert "choose a writable --store" in line
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert cli("models", "list", "--store", store, "-o", "json").json()["production"]["version"] == second
