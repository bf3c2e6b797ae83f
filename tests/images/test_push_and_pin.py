"""`make push` then `make pin`: the manifests deploy by digest, and that digest pulls the image that was built."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import yaml
from imagehelpers import ROOT, make
from podspec import helm_binary

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def kustomize(directory) -> list[dict]:
    kubectl = shutil.which("kubectl", path=str(ROOT / ".venv" / "bin")) or "kubectl"
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def images_in(docs: list[dict]) -> set[str]:
    found = set()
    for doc in docs:
        text = json.dumps(doc)
        found |= set(re.findall(r'"image": "([^"]+)"', text))
    return found


def test_push_prints_digests_pin_writes_them_and_they_pull_back(dockerd, registry, pushed, images_out, tmp_path):
    checkout = tmp_path / "checkout"  # `make pin` rewrites a checkout: a scratch copy of this one
    for part in ("helm", "manifests"):
        shutil.copytree(ROOT / part, checkout / part)
    make("pin", dockerd, f"IMAGES_OUT={images_out}", f"PIN_ROOT={checkout}", env={"HELM": helm_binary()})

    want = {f"{i['repository']}@{i['digest']}" for i in pushed["images"].values()}
    assert all(ref.startswith(f"{registry.address}/spamops/") for ref in want)
    for overlay in ("dev", "prod"):
        rendered = images_in(kustomize(checkout / "manifests" / "overlays" / overlay))
        workloads = {ref for ref in rendered if "/trainer" in ref or "/predictor" in ref}
        assert workloads == want, overlay
    chart = subprocess.run(
        [helm_binary(), "template", "spamops", str(checkout / "helm" / "spamops")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {ref for ref in re.findall(r"image: (\S+)", chart)} == want
    values = yaml.safe_load((checkout / "helm/spamops/values.yaml").read_text())["image"]
    assert values["repository"] == f"{registry.address}/spamops" and values["tag"] == pushed["tag"]

    for target, info in pushed["images"].items():
        ref = f"{info['repository']}@{info['digest']}"
        # The registry itself says the digest is what it stores (not docker's local view).
        inspected = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True, text=True, check=True
        )
        assert json.loads(inspected.stdout)["Digest"] == info["digest"]
        dockerd.docker("image", "rm", f"{info['repository']}:{pushed['tag']}")
        dockerd.docker("pull", ref)
        pulled = json.loads(dockerd.docker("image", "inspect", ref).stdout)[0]
        assert pulled["Id"] == info["id"], target  # the very image `make images` built
