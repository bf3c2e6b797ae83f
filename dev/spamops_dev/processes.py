"""Child processes of tests and ``make`` targets: start with a log file, wait until ready, stop by PID.

No systemd and no container runtime here: every daemon is a plain child
process. Stopping is always by the PID we recorded, after checking that the
PID still runs our program (PIDs are recycled), never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def spawn(
    argv: Sequence[str],
    log: Path,
    *,
    detached: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` with stdout+stderr appended to ``log``.

    ``detached``: own session, so it outlives us (the ``make ...-up`` targets);
    otherwise it shares our process group and a Ctrl-C of the test run reaches it.
    Our copy of the log descriptor is closed even when Popen raises.
    """
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detached,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )


def log_tail(log: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, for error messages (empty when unreadable)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(fn: Callable[[], T], timeout: float = 20.0, interval: float = 0.3) -> T:
    """Call ``fn`` until it returns something truthy or ``timeout`` passes; return its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200 now (a readiness probe); refused, timed out or any other status is False."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback test servers
            return reply.status == 200
    except OSError:  # URLError and HTTPError are OSErrors
        return False


def wait_ready(
    name: str,
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    timeout: float,
    log: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Wait until ``ready()``; fail at once (RuntimeError, with the log's tail) if the process exits.

    RuntimeError means "exited" (callers retry on new ports), TimeoutError "never got ready".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(log) if log else ''}")
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(f"{name} not ready after {timeout:.0f}s:\n{log_tail(log) if log else ''}")


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    """The argv of a running process (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def reap(pid: int) -> None:
    """Collect the exit status when the process is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, timeout: float = 15.0, is_ours: Callable[[list[str]], bool] | None = None) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL (``timeout <= 0``: SIGKILL at once).

    ``is_ours(argv)`` guards against a recycled PID: a process whose command
    line it rejects is left alone. Returns True when a process was signalled.
    """

    def ours() -> bool:
        return alive(pid) and (is_ours is None or is_ours(cmdline(pid)))

    if not ours():
        reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
    end = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < end:
        reap(pid)
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            reap(pid)
            if not alive(pid):
                break
            time.sleep(0.05)
    reap(pid)
    return True


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a child we hold a Popen for (SIGTERM, then SIGKILL) and collect it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
