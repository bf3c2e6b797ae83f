"""One local daemon process: a free loopback port, a log file, a readiness wait, a stop by PID."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on loopback (free now; the caller binds it soon)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def require_binary(name: str, package: str) -> str:
    """The path of ``name``, or an error that says which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed: apt-get install -y {package} (scripts/install-debian-deps.sh does it)"
        )
    return path


def http_json(url: str, body: object | None = None, timeout: float = 10) -> object:
    """GET (or POST a JSON ``body`` to) ``url`` and decode the JSON answer."""
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
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s: the one process started here, nothing else."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(check, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Call ``check()`` until it returns something truthy; that value, or TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last value: {last!r})")
