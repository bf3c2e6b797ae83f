"""The real Prometheus and Alertmanager the monitoring tests stand on (issue 10, item 5)."""

from __future__ import annotations

import json

import pytest

from spamops_dev.alertmanager import Alertmanager


def test_prometheus_counts_exactly_the_predictions_a_running_predictor_served(
    demo_model_dir, start_predictor, start_prometheus
):
    predictor = start_predictor(demo_model_dir)
    prometheus = start_prometheus([predictor])
    prometheus.wait_for_targets_up(1)
    texts = ["WINNER!! Claim your prize now", "see you at 8", "Call 0800 FREE txt STOP"]
    sent = 0
    for i in range(7):
        reply = predictor.post_json("/v1/models/spam:predict", {"instances": texts[: 1 + i % 3]})
        assert reply.status == 200
        sent += 1 + i % 3
    assert prometheus.wait_for_value("sum(spamops_predictions_total)", sent) == sent
    by_label = {r["metric"]["label"]: float(r["value"][1]) for r in prometheus.query("spamops_predictions_total")}
    assert sum(by_label.values()) == sent


def test_alertmanager_delivers_a_firing_alert_to_the_webhook(alertmanager: Alertmanager, webhook):
    alertmanager.post_alerts(
        [{"labels": {"alertname": "FixtureProbe", "severity": "warning"}, "annotations": {"summary": "probe"}}]
    )
    doc = webhook.wait_for(lambda d: d["status"] == "firing")
    assert doc["version"] == "4"
    assert doc["receiver"] == "webhook"
    [alert] = doc["alerts"]
    assert alert["labels"] == {"alertname": "FixtureProbe", "severity": "warning"}
    assert alert["annotations"] == {"summary": "probe"}
    assert alert["fingerprint"]


def test_a_prometheus_rule_reaches_the_webhook_through_alertmanager(
    demo_model_dir, start_predictor, start_prometheus, alertmanager, webhook, tmp_path
):
    predictor = start_predictor(demo_model_dir)
    rules = tmp_path / "rules.yml"
    rules.write_text(
        json.dumps(
            {"groups": [{"name": "probe", "rules": [{"alert": "ModelServed", "expr": "spamops_model_ready == 1"}]}]}
        )
    )
    start_prometheus([predictor], rule_files=[rules], alertmanager=alertmanager.address)
    doc = webhook.wait_for(lambda d: d["status"] == "firing" and d["commonLabels"].get("alertname") == "ModelServed")
    assert doc["alerts"][0]["labels"]["model_name"] == "spam"


def test_alertmanager_refuses_to_start_on_a_config_it_cannot_read(tmp_path):
    broken = Alertmanager(tmp_path / "am", config={"route": {"receiver": "nobody"}, "receivers": []})
    with pytest.raises(RuntimeError, match="exited"):
        broken.start()
