"""SBOMs of both images (syft, SPDX JSON) and signatures over the pushed digests (cosign, a key made here).

syft and cosign are built from their Go modules (scripts/images/tools.sh, cached by
version); `make sbom`, `make sign` and `make verify` are what the pipeline runs.
The signatures go to the test registry with no transparency log (none is reachable).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from imagehelpers import ROOT, make


def tool(name: str) -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/images/tools.sh"), "--print-env", name], capture_output=True, text=True, check=True
    ).stdout
    return out.strip().split("=", 1)[1]


@pytest.fixture(scope="module")
def sboms(dockerd, built, images_out) -> dict[str, dict]:
    make("sbom", dockerd, f"IMAGES_OUT={images_out}")
    return {t: json.loads((images_out / "sbom" / f"{t}.spdx.json").read_text()) for t in built["images"]}


def packages(document: dict) -> dict[str, str]:
    return {p["name"]: p.get("versionInfo", "") for p in document["packages"]}


@pytest.mark.parametrize("target", ["trainer", "predictor"])
def test_sbom_lists_the_locked_python_packages_and_the_debian_base(sboms, target):
    document = sboms[target]
    assert document["spdxVersion"].startswith("SPDX-")
    found = packages(document)
    locked = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().split() if "==" in line)
    for name in ("scikit-learn", "kserve", "boto3", "numpy"):
        assert found.get(name) == locked[name], name
    assert found.get("spamops") == "0.1.0"
    assert "python3.11" in found and "libc6" in found  # the base image's Debian packages, scanned too
    assert "pip" not in found and "gcc" not in found


def test_signed_digests_verify_with_the_public_key_and_not_with_another(dockerd, pushed, sboms, images_out, tmp_path):
    cosign = tool("cosign")
    env = {**os.environ, "COSIGN_PASSWORD": ""}
    for name in ("ours", "other"):
        subprocess.run(
            [cosign, "generate-key-pair", "--output-key-prefix", str(tmp_path / name)],
            env=env,
            check=True,
            capture_output=True,
        )
    out = f"IMAGES_OUT={images_out}"
    make("sign", dockerd, out, f"COSIGN_KEY={tmp_path / 'ours.key'}")
    verified = make("verify", dockerd, out, f"COSIGN_PUB={tmp_path / 'ours.pub'}")
    for info in pushed["images"].values():
        assert f"verified {info['repository']}@{info['digest']}" in verified.stdout
    wrong = subprocess.run(
        ["make", "--no-print-directory", "verify", out, f"COSIGN_PUB={tmp_path / 'other.pub'}"],
        cwd=ROOT,
        env={**env, **dockerd.env()},
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0 and "verified" not in wrong.stdout
