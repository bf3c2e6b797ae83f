"""`make test-fast` is the edit-test loop: the tests that need no control plane, no docker and no Go
build. `make test` (what .ci/run runs) is all of them."""

import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS_GO_BUILD = "tests/monitoring/test_rules.py::test_the_charts_prometheus_rule_is_the_plain_rules_file"


def _make(target: str) -> list[str]:
    """The pytest command line ``make TARGET`` runs (``make -n``: printed, not run)."""
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    (line,) = [line for line in dry.stdout.splitlines() if "/pytest" in line]
    return shlex.split(line)


def _collect(argv: list[str]) -> list[str]:
    done = subprocess.run(
        [*argv, "-n", "0", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_test_fast_leaves_out_the_control_plane_docker_and_go_builds_and_keeps_the_rest():
    fast = _collect(_make("test-fast"))
    suites = {nodeid.split("/")[1] for nodeid in fast if nodeid.count("/") >= 2}
    assert not {"k8s", "images"} & suites, "tests/k8s and tests/images need a control plane or docker"
    assert NEEDS_GO_BUILD not in fast, "helm is built from its Go module"
    assert {"cli", "deploy", "monitoring", "registry", "s3", "serving", "training"} <= suites, suites
    assert "tests/test_readme.py::test_every_exit_code_is_documented" in fast


def test_test_runs_the_whole_suite_as_ci_does():
    argv = _make("test")
    assert not any(a == "-m" or a.startswith("-m") for a in argv[1:]), argv  # no marker left out
    assert "make test" in (ROOT / ".ci" / "run").read_text()
