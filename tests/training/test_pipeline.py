"""The retraining pipeline end to end through the CLI: gate, version, promote, refuse."""

from __future__ import annotations

import json

from sklearn.dummy import DummyClassifier

from spamops.config import GateConfig
from spamops.training.data import load_dataset
from spamops.training.demo_data import demo_data_path
from spamops.training.evaluate import evaluate
from spamops.training.gate import decide


def test_real_data_is_promoted_and_noisy_incoming_data_is_refused(real_data, cli, store):
    original = real_data / "smsspamcollection-1k.csv"
    incoming = real_data / "synthetic_sms_numeric.csv"

    first = cli("train", "--store", store, "--data", original, "--json", "--quiet")
    assert first.code == 0, first.err
    good = first.json()
    assert good["gate"]["passed"] is True
    assert good["promoted"]["version"] == good["version"]

    second = cli("train", "--store", store, "--data", original, incoming, "--json", "--quiet")
    assert second.code == 3
    refused = second.json()
    assert refused["gate"]["passed"] is False
    assert refused["promoted"] is None
    failed_rules = {r["rule"] for r in refused["gate"]["rules"] if not r["passed"]}
    assert {"min_spam_f1", "min_spam_recall"} <= failed_rules

    listing = cli("models", "list", "--store", store, "--json").json()
    assert listing["production"]["version"] == good["version"]
    statuses = {v["version"]: v["status"] for v in listing["versions"]}
    assert statuses == {good["version"]: "production", refused["version"]: "refused"}
    card = cli("models", "show", refused["version"], "--store", store, "--json").json()
    assert card["gate"]["reasons"] and card["champion"]["version"] == good["version"]
    assert [s["uri"] for s in card["data"]["sources"]] == [str(original), str(incoming)]


def test_an_always_ham_model_is_refused_by_the_default_gate(real_data):
    data = load_dataset([str(real_data / "smsspamcollection-1k.csv")])
    always_ham = DummyClassifier(strategy="most_frequent").fit(data.X, data.y)

    metrics = evaluate(always_ham, data.X, data.y)
    decision = decide(metrics, GateConfig())

    assert metrics.accuracy == metrics.baseline_accuracy == 0.848  # "accurate", yet useless
    assert not decision.passed
    assert {r.rule for r in decision.rules if not r.passed} == {
        "min_accuracy",
        "min_spam_f1",
        "min_spam_recall",
        "beats_baseline",
    }


def test_demo_run_stores_a_complete_traceable_version(cli, store):
    result = cli("train", "--store", store, "--quiet")
    assert result.code == 0, result.err
    assert "gate: PASSED" in result.out

    version = cli("models", "list", "--store", store, "--json").json()["production"]["version"]
    folder = store / "spam" / version
    assert sorted(p.name for p in folder.iterdir()) == [
        "confusion_matrix.png",
        "model-card.json",
        "model.joblib",
        "precision_recall.png",
        "report.md",
        "roc_curve.png",
    ]
    card = json.loads((folder / "model-card.json").read_text())
    assert card["version"] == version and version.startswith("spam_model_")
    assert card["data"]["sources"][0]["uri"] == str(demo_data_path())
    assert card["feature_spec"]["names"] == ["length", "punct"]
    assert len(card["feature_statistics"]["length"]["percentiles"]) == 101
    assert set(card["libraries"]) >= {"scikit-learn", "numpy", "joblib"}
    assert (folder / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert f"# spam {version}" in (folder / "report.md").read_text()


def test_training_is_deterministic_for_a_seed_and_data(cli, tmp_path):
    cards = []
    for name in ("a", "b"):
        store = tmp_path / name
        assert cli("train", "--store", store, "--quiet").code == 0
        version = cli("models", "list", "--store", store, "--json").json()["production"]["version"]
        cards.append(json.loads((store / "spam" / version / "model-card.json").read_text()))
    assert cards[0]["params"] == cards[1]["params"]
    assert cards[0]["metrics"] == cards[1]["metrics"]
    assert cards[0]["data"]["fingerprint"] == cards[1]["data"]["fingerprint"]


def test_invalid_config_is_a_clear_bad_input_error(tmp_path, cli, store):
    config = tmp_path / "run.yaml"
    config.write_text("gate:\n  min_accuracy: 1.5\n  min_acuracy: 0.9\n")
    result = cli("train", "--config", config, "--store", store)
    assert result.code == 2
    assert "run.yaml: invalid config" in result.err
    assert "gate.min_accuracy" in result.err and "gate.min_acuracy" in result.err
    assert not store.exists()


def test_config_defaults_round_trip_through_the_loader(tmp_path, cli):
    result = cli("config", "defaults")
    assert result.code == 0
    path = tmp_path / "defaults.yaml"
    path.write_text(result.out)
    from spamops.config import RunConfig, load_config

    assert load_config(path) == RunConfig()


def test_command_line_overrides_are_validated_like_the_config(cli, store):
    result = cli("train", "--store", store, "--model-name", "Not A Name", "--quiet")
    assert result.code == 2
    assert result.err.startswith("spamops: error: --model-name: String should match pattern")
    assert not store.exists()
