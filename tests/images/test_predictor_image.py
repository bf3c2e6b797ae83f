"""The predictor image as KServe runs it: storage initializer first, then kserve-container on a read-only /mnt/models.

KServe's init container runs ``kserve_storage.Storage.download(STORAGE_URI, /mnt/models)``
(its initializer-entrypoint) with env from the S3 Secret's annotations.  Its image
cannot be pulled here, so the same package and call run on the host into a directory
that becomes the predictor's read-only /mnt/models volume.  The predictor container
gets the InferenceService's command, args, env and UID 10001 with a read-only root;
with host networking it listens on free ports (appended ``--http_port/--grpc_port``,
as any KServe flag may be appended in ``args``), and its HEALTHCHECK is told that port.
Its answers must equal the in-process model's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import joblib
import pytest
from podspec import chart_values, predictor_run, render, storage_initializer_env

from spamops.cli import main
from spamops.features import features_matrix
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.training.evaluate import spam_probability
from spamops_dev.ports import free_port

SPAMMY = "WINNER!! You have won a £1000 prize. Call 09061701461 now to claim, T&C apply, 18+ only!!"
HAMMY = "Ok see you at 8"


def http(method: str, url: str, doc=None) -> tuple[int, dict]:
    body = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def version_uri(seaweed) -> str:
    """A version trained and promoted in-process on the demo data, in its own store."""
    env = {**seaweed.env(), "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        store = f"s3://{seaweed.bucket}/serving-{uuid.uuid4().hex[:8]}"
        assert main(["train", "--store", store, "--quiet"]) == 0
        registry = Registry(open_store(store), "spam")
        return registry.version_uri(registry.production().version)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def storage_initializer(docs: list[dict], uri: str, dest: Path) -> None:
    """KServe's storage-initializer step: its package, its call, its env."""
    dest.mkdir(parents=True)
    code = "import sys; from kserve_storage import Storage; Storage.download(sys.argv[1], sys.argv[2])"
    env = {"PATH": os.environ["PATH"], "HOME": str(dest.parent), **storage_initializer_env(docs)}
    proc = subprocess.run([sys.executable, "-c", code, uri, str(dest)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for path in [dest, *dest.rglob("*")]:  # an emptyDir the predictor's UID can read
        path.chmod(0o755 if path.is_dir() else 0o644)
    dest.parent.chmod(0o755)


class Running:
    """One predictor container (detached); ``url`` on 127.0.0.1."""

    def __init__(self, dockerd, image: str, docs: list[dict], model_dir: Path, workdir: Path):
        run = predictor_run(docs)
        self.dockerd, self.port, self.name = dockerd, free_port(), f"spamops-predictor-{uuid.uuid4().hex[:8]}"
        assert run.command == ["python", "-m", "spamops.serving"] and "/mnt/models" in run.args
        args = [*run.argv(), "--http_port", str(self.port), "--grpc_port", str(free_port())]
        options = run.docker_args(workdir, [f"{model_dir}:/mnt/models:ro"])
        # The chart leaves the predictor's root writable; the image must not need it.
        options += ["--user", "10001:10001", "--read-only", "--cap-drop", "ALL"]
        options += ["--env", f"SPAMOPS_HEALTH_URL=http://127.0.0.1:{self.port}/v2/health/ready"]
        dockerd.docker("run", "--detach", "--name", self.name, *options, image, *args)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if http("GET", self.url + "/v2/health/live")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"predictor never answered:\n{self.logs()}")

    def logs(self) -> str:
        proc = self.dockerd.docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def health(self) -> str:
        return self.dockerd.docker("inspect", "--format", "{{.State.Health.Status}}", self.name).stdout.strip()

    def stop(self) -> None:
        self.dockerd.docker("rm", "--force", self.name, check=False)


def expected(pipeline, texts: list[str]) -> list[tuple[str, float]]:
    probs = spam_probability(pipeline, features_matrix(texts))
    labels = pipeline.predict(features_matrix(texts))
    return [("spam" if lab == 1 else "ham", float(p)) for lab, p in zip(labels, probs, strict=True)]


def test_predictor_serves_what_the_storage_initializer_pulled_like_the_in_process_model(
    dockerd, built, seaweed, version_uri, tmp_path
):
    docs = render(chart_values(seaweed, **{"predictor.storageUri": version_uri}))
    mnt = tmp_path / "volume" / "models"
    storage_initializer(docs, version_uri, mnt)
    version = json.loads((mnt / "model-card.json").read_text())["version"]
    pipeline = joblib.load(mnt / "model.joblib")
    want = expected(pipeline, [SPAMMY, HAMMY])

    server = Running(dockerd, built["images"]["predictor"]["name"], docs, mnt, tmp_path)
    try:
        status, model = http("GET", server.url + "/v1/models/spam")  # the InferenceService's readinessProbe
        assert status == 200 and model["version"] == version, server.logs()
        status, v1 = http("POST", server.url + "/v1/models/spam:predict", {"instances": [SPAMMY, HAMMY]})
        assert status == 200, server.logs()
        assert [(p["label"], p["spam_probability"]) for p in v1["predictions"]] == want
        assert {p["model_version"] for p in v1["predictions"]} == {version}

        status, v2 = http(
            "POST",
            server.url + "/v2/models/spam/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": [SPAMMY, HAMMY]}]},
        )
        assert status == 200, server.logs()
        outputs = {o["name"]: o["data"] for o in v2["outputs"]}
        assert outputs["label"] == [w[0] for w in want]
        assert outputs["spam_probability"] == pytest.approx([w[1] for w in want], abs=1e-7)

        status, explained = http("POST", server.url + "/v1/models/spam:explain", {"instances": [SPAMMY]})
        assert status == 200, server.logs()
        (exp,) = explained["explanations"]
        assert (exp["label"], exp["spam_probability"]) == want[0] and exp["model_version"] == version

        deadline = time.monotonic() + 60  # the image's HEALTHCHECK (10 s interval) agrees
        while server.health() != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
        assert server.health() == "healthy"
    finally:
        server.stop()


def test_a_tampered_artifact_leaves_the_predictor_alive_but_not_ready(dockerd, built, seaweed, version_uri, tmp_path):
    docs = render(chart_values(seaweed, **{"predictor.storageUri": version_uri}))
    mnt = tmp_path / "volume" / "models"
    storage_initializer(docs, version_uri, mnt)
    with (mnt / "model.joblib").open("ab") as f:
        f.write(b"\0")  # not the file the card vouches for

    server = Running(dockerd, built["images"]["predictor"]["name"], docs, mnt, tmp_path)
    try:
        status, body = http("GET", server.url + "/v2/health/ready")
        assert status == 503 and "sha256" in body["error"], server.logs()
        assert http("GET", server.url + "/v1/models/spam")[0] == 503
        assert http("POST", server.url + "/v1/models/spam:predict", {"instances": [HAMMY]})[0] == 503
        assert "NOT READY (checksum_mismatch)" in server.logs()
    finally:
        server.stop()
    shutil.rmtree(mnt)
