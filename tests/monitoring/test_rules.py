"""The shipped alert rules and Alertmanager config, checked by Prometheus' and Alertmanager's own tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "spamops" / "files" / "prometheus-rules.yaml"
RULE_TESTS = ROOT / "monitoring" / "prometheus-rules.test.yaml"
ALERTMANAGER = ROOT / "monitoring" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "monitoring.md"


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_accepts_the_rules_file():
    res = run("promtool", "check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in res.stdout


def test_promtool_unit_tests_of_every_alert_pass():
    res = run("promtool", "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for t in tests for case in t.get("alert_rule_test", [])]
    for alert in alerts():
        mine = [c for c in cases if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']}: no test where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']}: no test where it stays silent"


def test_promtool_unit_tests_can_fail(tmp_path):
    """A rule test expecting the opposite of what the rules do fails: the pass above means something."""
    doc = yaml.safe_load(RULE_TESTS.read_text())
    doc["rule_files"] = [str(RULES)]
    for case in doc["tests"][0]["alert_rule_test"]:
        case["exp_alerts"] = [] if case["exp_alerts"] else [{"exp_labels": {"severity": "warning"}}]
    (tmp_path / "inverted.test.yaml").write_text(yaml.safe_dump(doc))
    res = run("promtool", "test", "rules", "inverted.test.yaml", cwd=tmp_path)
    assert res.returncode != 0 and "FAILED" in res.stdout + res.stderr


def test_every_alert_carries_severity_summary_description_and_a_runbook():
    runbooks = RUNBOOKS.read_text()
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == name.lower(), name
        assert f"\n### {name}\n" in runbooks, f"docs/monitoring.md has no runbook section for {name}"


def test_amtool_accepts_the_example_alertmanager_config():
    res = run("amtool", "check-config", str(ALERTMANAGER))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    "labels, receivers",
    [
        (["alertname=SpamopsFeatureDriftAlert", "severity=warning", "retrain=true"], "spamops-retrain,slack-warnings"),
        (["alertname=SpamopsFeatureDriftWarning", "severity=warning"], "slack-warnings"),
        (["alertname=SpamopsModelNotReady", "severity=critical"], "pagerduty-pages"),
    ],
)
def test_example_config_routes_drift_to_the_retrain_trigger_and_pages_to_pagerduty(labels, receivers):
    res = run("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == receivers


def test_example_config_names_only_placeholder_secrets():
    text = ALERTMANAGER.read_text()
    assert "CHANGE" in text
    doc = yaml.safe_load(text)
    assert "CHANGE" in doc["global"]["slack_api_url"]
    [pd] = next(r for r in doc["receivers"] if r["name"] == "pagerduty-pages")["pagerduty_configs"]
    assert pd["routing_key"].startswith("CHANGE-ME")


@pytest.mark.helm
def test_the_charts_prometheus_rule_is_the_plain_rules_file():
    helm = (
        subprocess.run(
            ["bash", "scripts/envtest/build.sh", "--print-env", "helm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.split("HELM=", 1)[1]
        .strip()
    )
    values = ROOT / "helm" / "spamops" / "ci" / "monitoring-values.yaml"
    res = run(helm, "template", "spamops", "helm/spamops", "-f", str(values), "-s", "templates/monitoring.yaml")
    assert res.returncode == 0, res.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(res.stdout) if d}
    assert docs["PrometheusRule"]["spec"] == yaml.safe_load(RULES.read_text())
    assert docs["PodMonitor"]["spec"]["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "spam"}
    default = run(helm, "template", "spamops", "helm/spamops")
    assert "monitoring.coreos.com" not in default.stdout, "operator objects must be off by default"
