"""The trainer image run as the chart's CronJob runs it: exit codes 0, 3 and 2 and what each leaves in S3.

Command, env (the Secret's credentials), the ConfigMap at /etc/spamops, UID 10001, a
read-only root with the scratch emptyDir on /tmp: all come from the rendered chart
(podspec.py). The data are the real files, uploaded to the test SeaweedFS.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from podspec import chart_values, render, trainer_run

from spamops.registry.store import open_store
from spamops.registry.versions import Registry

pytestmark = pytest.mark.realdata
REAL = "smsspamcollection-1k.csv"
NOISY = "synthetic_sms_numeric.csv"


@pytest.fixture(scope="module")
def uploaded(seaweed, real_data) -> dict[str, str]:
    client = seaweed.client()
    uris = {}
    for name in (REAL, NOISY):
        client.put_object(Bucket=seaweed.bucket, Key=f"data/{name}", Body=(real_data / name).read_bytes())
        uris[name] = f"s3://{seaweed.bucket}/data/{name}"
    return uris


def run_trainer(dockerd, built, seaweed, tmp_path, config_suffix: str = "", **values) -> subprocess.CompletedProcess:
    run = trainer_run(render(chart_values(seaweed, **values)))
    assert run.user == "10001:10001" and run.read_only and run.tmpfs == ["/tmp"]  # what the chart asks for
    assert list(run.files) == ["/etc/spamops"]
    run.files["/etc/spamops"]["config.yaml"] += config_suffix
    image = built["images"]["trainer"]["name"]
    return dockerd.docker("run", "--rm", *run.docker_args(tmp_path), image, *run.argv(), check=False, timeout=600)


def registry(seaweed, s3_env, monkeypatch) -> Registry:
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    return Registry(open_store(f"s3://{seaweed.bucket}/models"), "spam")


def test_good_data_is_promoted_then_noisy_data_is_refused_and_bad_config_is_exit_2(
    dockerd, built, seaweed, uploaded, s3_env, tmp_path, monkeypatch
):
    good = run_trainer(dockerd, built, seaweed, tmp_path / "good")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "promoted: production is now" in good.stdout
    store = registry(seaweed, s3_env, monkeypatch)
    production = store.production().version
    assert production in good.stdout
    assert store.card(production).data.sources[0].uri == uploaded[REAL]

    noisy = run_trainer(
        dockerd,
        built,
        seaweed,
        tmp_path / "noisy",
        **{"training.config.data.sources": "{" + uploaded[REAL] + "," + uploaded[NOISY] + "}"},
    )
    assert noisy.returncode == 3, noisy.stdout + noisy.stderr
    assert store.production().version == production  # unchanged
    refused = [v for v in store.versions() if v.version != production]
    assert len(refused) == 1 and store.card(refused[0].version).gate.passed is False

    # The chart's schema refuses this value; a ConfigMap edited in the cluster is not checked by it.
    bad = run_trainer(dockerd, built, seaweed, tmp_path / "bad", config_suffix="gate:\n  min_accuracy: 2\n")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "min_accuracy" in bad.stderr
    assert store.production().version == production


def test_the_trainer_image_renders_a_stored_version_with_its_packaged_chart_and_helm(
    dockerd, built, seaweed, s3_env, monkeypatch
):
    """`spamops render isvc` inside the image: the chart copied into the wheel, the helm binary copied in."""
    from spamops.cli import main

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    store = f"s3://{seaweed.bucket}/render-models"
    assert main(["train", "--store", store, "--quiet"]) == 0  # the bundled demo data, on this side
    card = Registry(open_store(store), "spam").card(Registry(open_store(store), "spam").production().version)
    env = [arg for key, value in s3_env.items() for arg in ("--env", f"{key}={value}")]
    image = built["images"]["trainer"]["name"]
    res = dockerd.docker(
        "run", "--rm", "--network=host", "--read-only", "--tmpfs", "/tmp:uid=10001,gid=10001", *env, image,
        "render", "isvc", card.version, "--store", store, "--mode", "standard", "-o", "json",
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    isvc = json.loads(res.stdout)
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["labels"]["rollout.spamops.io/version"] == card.version
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert {e["name"]: e.get("value") for e in container["env"]}["STORAGE_URI"] == card.storage_uri
