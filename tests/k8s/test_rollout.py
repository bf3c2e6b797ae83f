"""Canary rollout through `spamops rollout` against a real kube-apiserver with KServe's CRD.

No KServe controller runs here, so these tests prove what spamops asks the API
server for (the InferenceService spec KServe acts on) and that the server
accepts it; the traffic split itself is KServe's job.
"""

from __future__ import annotations

import json

import pytest
import yaml
from k8shelpers import NAMESPACE, Kube

from spamops.cli import main


@pytest.fixture
def isvc(clean: Kube) -> Kube:
    """The chart's InferenceService, applied as a user would."""
    docs = [d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount", "InferenceService")]
    clean.apply(docs)
    return clean


@pytest.fixture
def production(tmp_path, capsys) -> tuple[str, str]:
    """A store with a promoted version: (store path, version)."""
    store = str(tmp_path / "store")
    assert main(["train", "--store", store, "--quiet", "--json"]) == 0
    return store, json.loads(capsys.readouterr().out)["version"]


def _spamops(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _predictor(kube: Kube) -> dict:
    isvc = json.loads(kube.kubectl("get", "inferenceservice", "spam", "-n", NAMESPACE, "-o", "json").stdout)
    return isvc["spec"]["predictor"]


def _storage_uri(predictor: dict) -> str:
    (container,) = [c for c in predictor["containers"] if c["name"] == "kserve-container"]
    return {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"]


def test_canary_promote_and_rollback_drive_the_inference_service(isvc, production, capsys):
    store, version = production
    kubeconfig = str(isvc.kubeconfig)
    before = _predictor(isvc)

    code, out, err = _spamops(
        capsys, "rollout", "canary", "--store", store, "--kubeconfig", kubeconfig, "--percent", 10
    )
    assert code == 0, err
    after = _predictor(isvc)
    assert after["canaryTrafficPercent"] == 10
    assert _storage_uri(after) == f"file://{store}/spam/{version}/"
    (old,) = before["containers"]
    (new,) = after["containers"]
    assert {k: v for k, v in new.items() if k != "env"} == {k: v for k, v in old.items() if k != "env"}

    code, out, _ = _spamops(capsys, "rollout", "status", "--kubeconfig", kubeconfig, "--json")
    assert code == 0 and json.loads(out)["canary_percent"] == 10

    code, _, err = _spamops(capsys, "rollout", "rollback", "--kubeconfig", kubeconfig)
    assert code == 0, err
    assert _predictor(isvc)["canaryTrafficPercent"] == 0
    assert _storage_uri(_predictor(isvc)) == f"file://{store}/spam/{version}/"

    code, _, err = _spamops(capsys, "rollout", "promote", "--kubeconfig", kubeconfig)
    assert code == 0, err
    assert "canaryTrafficPercent" not in _predictor(isvc)

    code, _, err = _spamops(capsys, "rollout", "rollback", "--kubeconfig", kubeconfig)
    assert code == 2 and "no canary in progress" in err


def test_out_of_range_percent_and_missing_service_are_clear_errors(clean, production, capsys):
    store, _ = production
    kubeconfig = str(clean.kubeconfig)
    code, _, err = _spamops(capsys, "rollout", "canary", "--store", store, "--kubeconfig", kubeconfig, "--percent", 150)
    assert code == 2 and "--percent 150" in err
    code, _, err = _spamops(capsys, "rollout", "canary", "--store", store, "--kubeconfig", kubeconfig, "--isvc", "nope")
    assert code == 2 and f"inferenceservice {NAMESPACE}/nope: not found" in err


def test_a_training_run_with_rollout_enabled_starts_the_canary(isvc, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(isvc.kubeconfig))
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump({"store": str(tmp_path / "store"), "rollout": {"enabled": True, "canary_percent": 25}})
    )

    code, out, err = _spamops(capsys, "train", "--config", config, "--json", "--quiet")

    assert code == 0, err
    result = json.loads(out)
    assert result["rollout"]["canary_percent"] == 25
    assert _storage_uri(_predictor(isvc)) == result["storage_uri"]
    assert _predictor(isvc)["canaryTrafficPercent"] == 25
