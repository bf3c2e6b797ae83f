#!/usr/bin/env python3
"""Build, push, pin, describe (SBOM) and sign the two spamops images: what `make images|push|pin|sbom|sign|verify` run.

    ship.py build  [--tag T] [--base-image B] [--ca-bundle F]   # spamops/trainer:T, spamops/predictor:T
    ship.py push   --registry host:port/ns [--tag T]            # prints <registry>/<image>@sha256:...
    ship.py pin    [--root DIR]                                 # digests -> chart values + kustomize base
    ship.py sbom   [--tag T]                                    # SPDX JSON per image (syft)
    ship.py sign   --key cosign.key                             # sign + attach the SBOM (cosign) by digest
    ship.py verify --key cosign.pub                             # verify both

Every step reads the previous one's record under ``--out`` (default ``.spamops/images``):
``built.json`` (local names, ids, sizes), ``pushed.json`` (registry names and digests),
``sbom/<image>.spdx.json``.  So ``pin`` writes exactly the digests ``push`` got back from
the registry, and ``sign`` signs those, never a mutable tag.  docker is ``$DOCKER`` (else
Debian's /usr/bin/docker, else PATH) talking to ``$DOCKER_HOST``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("trainer", "predictor")  # Dockerfile targets = image names
LOCAL_REPOSITORY = "spamops"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
VALUES = Path("helm/spamops/values.yaml")
KUSTOMIZATION = Path("manifests/base/kustomization.yaml")
HELM_IN_CONTEXT = Path("build/helm/helm")  # the Dockerfile's trainer stage COPYs it (.dockerignore lets it in)


class ShipError(Exception):
    """A step that cannot go on; the message says what to do. Exit code 2."""


def docker_cli() -> str:
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def run(cmd: list[str], *, capture: bool = False, env: dict | None = None, cwd: Path = ROOT) -> str:
    print("+ " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, text=True, capture_output=capture, check=False
    )
    if proc.returncode != 0:
        detail = (proc.stderr or "")[-4000:] if capture else ""
        raise ShipError(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed with exit code {proc.returncode}\n{detail}")
    return proc.stdout if capture else ""


def git_revision() -> str:
    """The tag of a build: the commit, with ``-dirty`` when the tree has uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "dev"
    return rev + ("-dirty" if dirty.strip() else "")


def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _read(out: Path, name: str, hint: str) -> dict:
    path = out / name
    if not path.exists():
        raise ShipError(f"{path} is missing: run `{hint}` first")
    return json.loads(path.read_text())


def _write(out: Path, name: str, doc: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(doc, indent=2) + "\n")


# ---------------------------------------------------------------- build
def stage_helm() -> Path:
    """The pinned helm (built from its Go module and cached by build.sh) at build/helm/helm, for the trainer."""
    from spamops_dev.artifacts import ensure_helm

    staged = ROOT / HELM_IN_CONTEXT
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ensure_helm(), staged)  # same mtime and size each time: the build cache keeps the layer
    return staged


def build(out: Path, tag: str, base_image: str | None, ca_bundle: str | None, source: str) -> dict:
    docker = docker_cli()
    stage_helm()
    built: dict = {"tag": tag, "base_image": base_image or "(Dockerfile default)", "images": {}}
    for target in IMAGES:
        name = f"{LOCAL_REPOSITORY}/{target}:{tag}"
        cmd = [docker, "build", "--network=host", "--target", target, "--tag", name]
        cmd += ["--build-arg", f"REVISION={tag}", "--build-arg", f"VERSION={project_version()}"]
        cmd += ["--build-arg", f"SOURCE={source}"]
        if base_image:
            cmd += ["--build-arg", f"BASE_IMAGE={base_image}"]
        if ca_bundle:
            if not Path(ca_bundle).is_file():
                raise ShipError(f"--ca-bundle {ca_bundle}: no such file (IMAGES_CA_BUNDLE / PIP_CERT)")
            cmd += ["--secret", f"id=ca-bundle,src={ca_bundle}"]
        started = time.monotonic()
        run([*cmd, "."], env={"DOCKER_BUILDKIT": "1"})
        seconds = time.monotonic() - started
        image = json.loads(run([docker, "image", "inspect", name], capture=True))[0]
        built["images"][target] = {"name": name, "id": image["Id"], "size": image["Size"], "build_seconds": seconds}
        print(f"{name}  {image['Size'] / 1e6:.0f} MB  ({seconds:.1f} s)")
    _write(out, "built.json", built)
    return built


# ---------------------------------------------------------------- push
def push(out: Path, registry: str) -> dict:
    if not registry or "/" not in registry:
        raise ShipError(f"REGISTRY={registry!r}: give host[:port]/namespace, e.g. ghcr.io/you/spamops")
    registry = registry.rstrip("/")
    built = _read(out, "built.json", "make images")
    docker = docker_cli()
    pushed: dict = {"registry": registry, "tag": built["tag"], "images": {}}
    for target, info in built["images"].items():
        remote = f"{registry}/{target}"
        run([docker, "tag", info["name"], f"{remote}:{built['tag']}"])
        run([docker, "push", f"{remote}:{built['tag']}"])
        digests = json.loads(
            run([docker, "image", "inspect", "--format", "{{json .RepoDigests}}", info["name"]], capture=True)
        )
        (digest,) = {d.split("@", 1)[1] for d in digests if d.split("@", 1)[0] == remote}
        pushed["images"][target] = {"repository": remote, "digest": digest, "id": info["id"]}
        print(f"{remote}@{digest}")
    _write(out, "pushed.json", pushed)
    return pushed


# ---------------------------------------------------------------- pin
def _set_image_block(values: str, repository: str, tag: str, digests: dict[str, str]) -> str:
    """Rewrite the top-level ``image:`` block of values.yaml, keeping every other line (and comment)."""
    lines = values.splitlines()
    try:
        start = lines.index("image:")
    except ValueError:
        raise ShipError(f"{VALUES}: no top-level 'image:' block to pin") from None
    end = start + 1
    while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
        end += 1
    old = "\n".join(lines[start:end])
    pull = re.search(r"^  pullPolicy: *(\S+)", old, re.M)
    # The `# --` comments are the chart's documentation (helm-docs): keep them as values.yaml has them.
    block = [
        "image:",
        "  # -- Images are `<repository>/trainer:<tag>` and `<repository>/predictor:<tag>`.",
        f"  repository: {repository}",
        "  # -- Image tag of both images.",
        f'  tag: "{tag}"',
        "  # -- Pull policy of trainer, predictor and smoke test.",
        f"  pullPolicy: {pull.group(1) if pull else 'IfNotPresent'}",
        "  # Image digests (`sha256:...`) written by `make pin` after `make push`",
        "  # (docs/images.md). When set, the image is `<repository>/trainer@<digest>`:",
        "  # deploy by digest, never by a mutable tag.",
        "  digests:",
        *(
            line
            for name in IMAGES
            for line in (
                f"    # -- Digest of the {name} image; empty means by tag.",
                f"    {name}: {json.dumps(digests.get(name, ''))}",
            )
        ),
    ]
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep the blank line(s) after the block
    return "\n".join([*lines[:start], *block, *lines[end:]]) + "\n"


def _kustomization(text: str, pushed: dict) -> str:
    """The base kustomization with its generated ``images:`` list (replaced whole)."""
    kept = re.split(r"\n# Pinned by `make pin`.*", text, maxsplit=1, flags=re.S)[0].rstrip("\n")
    entries = [
        "# Pinned by `make pin` (the digests `make push` got back; the same ones are in",
        "# helm/spamops/values.yaml, which manifests/base/spamops.yaml is rendered from).",
        "images:",
    ]
    for target in IMAGES:
        info = pushed["images"][target]
        entries += [f"  - name: {info['repository']}", f"    digest: {info['digest']}"]
    return kept + "\n" + "\n".join(entries) + "\n"


def pin(out: Path, root: Path) -> None:
    pushed = _read(out, "pushed.json", "make push REGISTRY=host:port/ns")
    digests = {t: pushed["images"][t]["digest"] for t in IMAGES}
    for target, digest in digests.items():
        if not DIGEST.match(digest):
            raise ShipError(f"{out / 'pushed.json'}: {target} digest {digest!r} is not sha256:<64 hex>")
    values = root / VALUES
    values.write_text(_set_image_block(values.read_text(), pushed["registry"], pushed["tag"], digests))
    kustomization = root / KUSTOMIZATION
    kustomization.write_text(_kustomization(kustomization.read_text(), pushed))
    run(["bash", str(ROOT / "scripts/k8s/render-base.sh")], env={"SPAMOPS_ROOT": str(root)}, cwd=root)
    for target in IMAGES:
        print(f"pinned {pushed['images'][target]['repository']}@{digests[target]}")


# ---------------------------------------------------------------- sbom, sign, verify
def _tool(name: str) -> str:
    if os.environ.get(name.upper()):
        return os.environ[name.upper()]
    line = run(["bash", str(ROOT / "scripts/images/tools.sh"), "--print-env", name], capture=True).strip()
    return line.split("=", 1)[1]


SBOM_CACHE = Path(os.environ.get("SPAMOPS_CACHE") or Path.home() / ".cache" / "spamops") / "images" / "sbom"


def sbom(out: Path) -> dict:
    """An SPDX JSON document per image, from the image itself (``docker save`` -> syft).

    An image id is a content hash, so its SBOM is cached by id: an unchanged image is not rescanned.
    """
    built = _read(out, "built.json", "make images")
    syft, docker = _tool("syft"), docker_cli()
    (out / "sbom").mkdir(parents=True, exist_ok=True)
    SBOM_CACHE.mkdir(parents=True, exist_ok=True)
    made = {}
    for target, info in built["images"].items():
        document = out / "sbom" / f"{target}.spdx.json"
        cached = SBOM_CACHE / f"{info['id'].removeprefix('sha256:')}.spdx.json"
        if not cached.exists():
            archive = out / "sbom" / f"{target}.tar"
            run([docker, "save", "--output", str(archive), info["name"]])
            run(
                [syft, "scan", f"docker-archive:{archive}", "--output", f"spdx-json={cached}.tmp", "--quiet"],
                env={"SYFT_CHECK_FOR_APP_UPDATE": "false"},
            )
            archive.unlink()
            Path(f"{cached}.tmp").rename(cached)
        shutil.copyfile(cached, document)
        made[target] = str(document)
        packages = len(json.loads(document.read_text()).get("packages", []))
        print(f"{document}  ({packages} packages)")
    return made


def _cosign_env() -> dict[str, str]:
    # A key generated without a password (tests, CI secrets hold it) unless COSIGN_PASSWORD says otherwise.
    return {"COSIGN_PASSWORD": os.environ.get("COSIGN_PASSWORD", ""), "COSIGN_YES": "true"}


def _insecure(registry: str) -> list[str]:
    host = registry.split("/", 1)[0]
    return ["--allow-insecure-registry", "--allow-http-registry"] if host.startswith(("127.", "localhost")) else []


def sign(out: Path, key: str) -> None:
    """Sign each pushed digest and attach its SBOM as a signed SPDX attestation (no transparency log)."""
    pushed = _read(out, "pushed.json", "make push REGISTRY=host:port/ns")
    cosign = _tool("cosign")
    for target in IMAGES:
        ref = f"{pushed['images'][target]['repository']}@{pushed['images'][target]['digest']}"
        flags = [*_insecure(ref), "--key", key, "--tlog-upload=false"]
        run([cosign, "sign", *flags, ref], env=_cosign_env())
        document = out / "sbom" / f"{target}.spdx.json"
        if not document.exists():
            raise ShipError(f"{document} is missing: run `make sbom` before `make sign`")
        run([cosign, "attest", *flags, "--type", "spdxjson", "--predicate", str(document), ref], env=_cosign_env())
        print(f"signed {ref}")


def verify(out: Path, key: str) -> None:
    pushed = _read(out, "pushed.json", "make push REGISTRY=host:port/ns")
    cosign = _tool("cosign")
    for target in IMAGES:
        ref = f"{pushed['images'][target]['repository']}@{pushed['images'][target]['digest']}"
        flags = [*_insecure(ref), "--key", key, "--insecure-ignore-tlog=true"]
        run([cosign, "verify", *flags, ref], capture=True)
        run([cosign, "verify-attestation", *flags, "--type", "spdxjson", ref], capture=True)
        print(f"verified {ref} (signature and SPDX attestation)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / ".spamops" / "images", help="records of each step")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("--tag", default="")
    p.add_argument("--base-image", default="")
    p.add_argument("--ca-bundle", default="", help="extra CA bundle for pip, passed as a build secret")
    p.add_argument("--source", default="https://github.com/spamops/spamops", help="org.opencontainers.image.source")
    p = sub.add_parser("push")
    p.add_argument("--registry", required=True)
    p = sub.add_parser("pin")
    p.add_argument("--root", type=Path, default=ROOT, help="checkout whose chart values and base to rewrite")
    sub.add_parser("sbom")
    for name in ("sign", "verify"):
        sub.add_parser(name).add_argument("--key", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.out, args.tag or git_revision(), args.base_image or None, args.ca_bundle or None, args.source)
        elif args.command == "push":
            push(args.out, args.registry)
        elif args.command == "pin":
            pin(args.out, args.root.absolute())
        elif args.command == "sbom":
            sbom(args.out)
        elif args.command == "sign":
            sign(args.out, args.key)
        else:
            verify(args.out, args.key)
    except ShipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
