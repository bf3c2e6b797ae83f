"""What is inside both images and in their metadata: non-root, read-only-safe, labelled, no build tools."""

from __future__ import annotations

import json

import pytest
from imagehelpers import ROOT

from spamops.serving.__main__ import build_parser

IMAGES = ("trainer", "predictor")


def config(dockerd, image: str) -> dict:
    return json.loads(dockerd.docker("image", "inspect", image).stdout)[0]["Config"]


@pytest.mark.parametrize("target", IMAGES)
def test_default_user_is_10001_not_root_and_the_root_filesystem_can_be_read_only(dockerd, built, target):
    image = built["images"][target]["name"]
    assert config(dockerd, image)["User"] == "10001:10001"
    # No --user: the image's own default. A read-only root and no /tmp at all: nothing writes at import.
    proc = dockerd.docker(
        "run", "--rm", "--network=host", "--read-only", "--cap-drop", "ALL", "--entrypoint", "python", image,
        "-c", "import os, spamops.cli, spamops.serving.__main__; print(os.getuid(), os.getgid())",
    )  # fmt: skip
    assert proc.stdout.split() == ["10001", "10001"]


@pytest.mark.parametrize("target", IMAGES)
def test_labels_name_source_revision_and_version(dockerd, built, target):
    labels = config(dockerd, built["images"][target]["name"])["Labels"]
    assert labels["org.opencontainers.image.revision"] == built["tag"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.title"] == f"spamops-{target}"
    assert labels["org.opencontainers.image.base.name"] == built["base_image"]


@pytest.mark.parametrize("target", IMAGES)
def test_no_pip_compiler_or_pip_cache_in_the_final_image(dockerd, built, target):
    script = (
        "import importlib.util, os, shutil;"
        "print(importlib.util.find_spec('pip'), shutil.which('gcc'), shutil.which('cc'),"
        " os.path.exists('/root/.cache/pip'), os.path.exists('/build'))"
    )
    proc = dockerd.docker(
        "run", "--rm", "--network=host", "--user", "0", "--entrypoint", "python", built["images"][target]["name"],
        "-c", script,
    )  # fmt: skip
    assert proc.stdout.split() == ["None", "None", "None", "False", "False"]


def test_predictor_exposes_its_ports_and_has_a_healthcheck_the_trainer_has_none(dockerd, built):
    predictor = config(dockerd, built["images"]["predictor"]["name"])
    args = build_parser().parse_args(predictor["Cmd"])
    assert set(predictor["ExposedPorts"]) == {f"{args.http_port}/tcp", f"{args.grpc_port}/tcp"}
    assert predictor["Entrypoint"] == ["python", "-m", "spamops.serving"]
    assert predictor["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    trainer = config(dockerd, built["images"]["trainer"]["name"])
    assert trainer["Healthcheck"]["Test"] == ["NONE"]
    assert trainer["Entrypoint"] + trainer["Cmd"] == ["spamops", "train", "--config", "/etc/spamops/config.yaml"]


def test_the_default_tag_is_the_git_revision():
    """`make images` without IMAGE_TAG: the commit, marked -dirty when the tree has changes."""
    import importlib.util
    import subprocess

    spec = importlib.util.spec_from_file_location("spamops_ship", ROOT / "scripts/images/ship.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert ship.git_revision() == head.stdout.strip() + ("-dirty" if dirty else "")


@pytest.mark.parametrize("target", IMAGES)
def test_the_images_hold_the_product_not_its_test_support(dockerd, built, target):
    script = (
        "import importlib.util; print(importlib.util.find_spec('spamops_dev'), importlib.util.find_spec('spamops'))"
    )
    proc = dockerd.docker(
        "run", "--rm", "--network=host", "--entrypoint", "python", built["images"][target]["name"], "-c", script,
    )  # fmt: skip
    missing, product = proc.stdout.split(maxsplit=1)
    assert missing == "None" and "/opt/venv/" in product
