"""Signals and pipes, sent to real ``spamops`` processes at points the store or the output shows.

* A reader of stdout that went away (``spamops models show V | head -2``) is no error: exit 0, quiet.
* SIGINT/SIGTERM before the production pointer moved: exit 130/143, production unchanged, nothing
  new listed as complete (the training Job retries those within backoffLimit).
* Once the pointer moved, a signal lets the run finish: its output, exit 0, and ``models list`` agrees.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spamops.cli import main

SPAMOPS = (sys.executable, "-m", "spamops")
STOPS = [pytest.param(signal.SIGINT, 130, id="SIGINT"), pytest.param(signal.SIGTERM, 143, id="SIGTERM")]


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # module-scoped fixtures cannot use capsys
        code = main([str(a) for a in args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, str]:
    """A store whose production is one demo version."""
    store = tmp_path_factory.mktemp("signals") / "store"
    code, out = _run("train", "--store", store, "--quiet", "-o", "json")
    assert code == 0
    return store, json.loads(out)["version"]


@pytest.fixture
def production(seeded, tmp_path) -> tuple[Path, str]:
    """A copy of the seeded store for one test to change."""
    store, version = seeded
    shutil.copytree(store, tmp_path / "store")
    return tmp_path / "store", version


def _listing(store: Path) -> dict:
    code, out = _run("models", "list", "--store", store, "-o", "json")
    assert code == 0
    return json.loads(out)


@pytest.mark.parametrize(
    "args",
    [("models", "show", "{v}"), ("models", "list"), ("models", "list", "-o", "json"), ("models", "history")],
    ids=lambda a: " ".join(a),
)
def test_a_reader_that_closed_stdout_is_no_error(seeded, args):
    store, version = seeded
    argv = [a.format(v=version) for a in args]
    proc = subprocess.Popen([*SPAMOPS, *argv, "--store", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first byte is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_models_show_piped_into_head_exits_0_with_the_first_lines(seeded):
    store, version = seeded
    full = subprocess.run([*SPAMOPS, "models", "show", version, "--store", store], capture_output=True, text=True)
    shown = subprocess.run(
        ["bash", "-c", '"$@" | head -2; exit "${PIPESTATUS[0]}"', "bash", *SPAMOPS, "models", "show", version]
        + ["--store", str(store)],
        capture_output=True,
        text=True,
    )
    assert full.returncode == 0
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    assert shown.stdout.splitlines() == full.stdout.splitlines()[:2]


def _train(store: Path, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [*SPAMOPS, "train", "--store", store, "--force-new"],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("stop", "code"), STOPS)
def test_a_stop_signal_during_training_exits_128_plus_it_and_promotes_nothing(production, stop, code):
    store, version = production
    run = _train(store)
    seen = []
    for line in run.stderr:  # the grid search runs for seconds after it says so
        seen.append(line)
        if line.startswith("grid search:"):
            run.send_signal(stop)
            break
    out, err = run.communicate(timeout=120)
    assert run.returncode == code, "".join(seen) + err
    assert err.splitlines()[-1] == (
        f"spamops: interrupted by {signal.Signals(stop).name}; the production pointer did not move"
    )
    assert out == ""
    listing = _listing(store)
    assert listing["production"]["version"] == version
    assert [(v["version"], v["status"]) for v in listing["versions"]] == [(version, "production")]


def _full_pipe() -> tuple[int, int, int]:
    """A pipe whose buffer is already full: a process writing into it blocks until we read."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filled = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            filled += os.write(write_end, b"x" * 65536)
    os.set_blocking(write_end, True)
    return read_end, write_end, filled


def _pointer(store: Path) -> str | None:
    try:
        return json.loads((store / "spam" / "production.json").read_text())["version"]
    except (FileNotFoundError, ValueError):  # not there yet, or read between two writes
        return None


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_after_the_pointer_moved_lets_the_run_finish_with_exit_0(store, stop):
    read_end, write_end, filled = _full_pipe()
    run = _train(store, stdout=write_end)  # its final output cannot be written until we read
    os.close(write_end)
    try:
        deadline = time.monotonic() + 180
        while _pointer(store) is None:
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "the run never promoted"
            time.sleep(0.05)
        assert run.poll() is None  # still alive: blocked on the output it has not written
        run.send_signal(stop)
        with os.fdopen(read_end, "rb") as reader:
            output = reader.read()[filled:].decode()
    finally:
        run.wait(timeout=120)
    err = run.stderr.read()
    assert run.returncode == 0, err
    assert "interrupted" not in err
    promoted = _pointer(store)
    assert f"promoted: production is now {promoted}" in output
    assert f"version:  {promoted}" in output
    listing = _listing(store)
    assert listing["production"]["version"] == promoted
    assert [(v["version"], v["status"]) for v in listing["versions"]] == [(promoted, "production")]
    code, out = _run("models", "history", "--store", store, "-o", "json")
    assert code == 0 and [m["version"] for m in json.loads(out)] == [promoted]  # the move was recorded too
