"""Shared fixtures: the CLI as a user runs it, a fresh store, and the real data."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from spamops.cli import main

REAL_DATA_ENV = "SPAMOPS_REAL_DATA"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run ``spamops ARGS`` in-process and capture exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty local artifact store."""
    return tmp_path / "store"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real data directory that .ci/run passes in; skipped (with the reason) elsewhere."""
    location = os.environ.get(REAL_DATA_ENV)
    if not location:
        pytest.skip(f"{REAL_DATA_ENV} is not set: real-data tests need ../shared/data (set by .ci/run)")
    path = Path(location)
    if not (path / "smsspamcollection-1k.csv").is_file():
        pytest.fail(f"{REAL_DATA_ENV}={path} does not hold smsspamcollection-1k.csv")
    return path
