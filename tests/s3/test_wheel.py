"""The spamops wheel is the product: no test support in it, the chart in it, and it renders from anywhere.

The wheel is built the way a user builds it (``pip wheel . --no-deps``) from a copy
of this checkout's files, installed into a fresh virtualenv outside the repository,
and its ``spamops`` command renders the InferenceService of a version stored on the
test SeaweedFS, from a working directory that is not a checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.artifacts import ensure_helm

ROOT = Path(__file__).resolve().parents[2]


def checkout_copy(dest: Path) -> Path:
    """The files git would check out here (tracked and new, not ignored), without build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the work tree is still listed by --cached
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = checkout_copy(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("wheelhouse")
    # No build isolation: setuptools comes from the project's virtualenv, not from an index.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "-w", str(out), "--no-deps", "--no-build-isolation", "-q"],
        cwd=source,
        check=True,
    )
    (built,) = out.glob("spamops-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel only; the dependencies come from the project's venv through a .pth."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Installed before the .pth exists, so pip sees an empty environment (nothing to uninstall).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        env=clean_env(),
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would import this checkout instead of the wheel."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **extra}


def test_the_wheel_holds_the_product_and_the_chart_not_the_test_support(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("spamops_dev") or "/spamops_dev" in n]
    assert {n.split("/")[0] for n in names} == {"spamops", wheel.name.split("-py3")[0] + ".dist-info"}
    chart = {n.removeprefix("spamops/deploy/chart/") for n in names if n.startswith("spamops/deploy/chart/")}
    in_checkout = {str(p.relative_to(ROOT / "helm/spamops")) for p in (ROOT / "helm/spamops").rglob("*") if p.is_file()}
    assert chart == in_checkout  # a copy of helm/spamops, file for file


def test_the_installed_wheel_renders_a_stored_version_outside_the_checkout(
    installed, s3env, s3_uri, seed_version, tmp_path
):
    registry = Registry(open_store(s3_uri), "spam")
    version = seed_version(registry)
    card = registry.card(version)
    python = installed / "bin" / "python"
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import spamops, importlib.util; print(spamops.__file__, importlib.util.find_spec('spamops_dev'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=clean_env(),
    ).stdout.split()
    assert Path(where[0]).is_relative_to(installed) and where[1] == "None"  # the wheel's code, no test support

    res = subprocess.run(
        [str(installed / "bin" / "spamops"), "render", "isvc", version, "--store", s3_uri, "-o", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(SPAMOPS_HELM=str(ensure_helm())),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    isvc = json.loads(res.stdout)
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["labels"]["rollout.spamops.io/version"] == version
    assert isvc["metadata"]["annotations"]["rollout.spamops.io/sha256"] == card.sha256
    (container,) = isvc["spec"]["predictor"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["STORAGE_URI"] == card.storage_uri and card.storage_uri.startswith(s3_uri)
