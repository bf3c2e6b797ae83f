"""One local daemon (Prometheus, Alertmanager...): started, waited for and stopped with :mod:`spamops_dev.processes`."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from spamops_dev.ports import LOOPBACK, free_port
from spamops_dev.processes import http_ok, spawn, stop_pid, wait_ready, wait_until

__all__ = ["HOST", "Daemon", "free_port", "http_json", "require_binary", "wait_for"]

HOST = LOOPBACK


def require_binary(name: str, package: str) -> str:
    """The path of ``name``, or an error that says which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed: apt-get install -y {package} (scripts/install-debian-deps.sh does it)"
        )
    return path


def http_json(url: str, body: object | None = None, timeout: float = 10) -> Any:
    """GET (or POST a JSON ``body`` to) ``url`` and decode the JSON answer (any JSON value)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URLs built here
        raw = resp.read()
    return json.loads(raw) if raw else None


class Daemon:
    """A started process whose output goes to ``log_path``; :meth:`stop` ends exactly that PID."""

    def __init__(self, cmd: list[str], log_path: Path, ready_url: str, name: str) -> None:
        self.cmd, self.log_path, self.ready_url, self.name = cmd, log_path, ready_url, name
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        """Start and wait until ``ready_url`` answers 200; on failure the log is in the error."""
        self.proc = spawn(self.cmd, self.log_path)
        try:
            wait_ready(self.name, self.proc, lambda: http_ok(self.ready_url), timeout, self.log_path, interval=0.1)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s: the one process started here, nothing else."""
        if self.proc is not None:
            stop_pid(self.proc.pid, timeout=10)
            self.proc.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(check, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Call ``check()`` until it returns something truthy; that value, or TimeoutError naming ``what``."""
    last = wait_until(check, timeout, interval)
    if not last:
        raise TimeoutError(f"{what} not reached within {timeout}s (last value: {last!r})")
    return last
