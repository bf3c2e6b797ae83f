"""Helpers of the container tests: make targets run as a user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(
    target: str, dockerd, *args: str, env: dict | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess:
    """``make TARGET ARGS`` as a user runs it, against the test daemon."""
    env = {**os.environ, **dockerd.env(), **(env or {})}
    proc = subprocess.run(
        ["make", "--no-print-directory", target, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"make {target} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )
    return proc
