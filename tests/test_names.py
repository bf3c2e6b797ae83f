"""The names shared across spamops' parts are the ones spamops.names defines.

The alert rules, their promtool tests, the rollout's default PromQL and the docs name metrics
as text; a renamed or misspelt metric there would make an alert that never fires or a query
that never matches, silently.  Each ``spamops_*`` metric they name must be one of
``names.METRICS``, and each exporter must export its metrics under those names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import spamops.serving.inference_log
import spamops.serving.metrics
import spamops.serving.shadow  # noqa: F401  (registers the shadow's own metrics)
from spamops import names
from spamops.config import SUCCESS_RATE_PRESETS
from spamops.deploy import analysis

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"(?<![A-Za-z0-9_])spamops_[a-z0-9_]+")
# Series of a histogram family, beside the family name itself.
SERIES_SUFFIXES = ("_bucket", "_sum", "_count")
# spamops_* words that are not metrics: the development/test support package.
NOT_METRICS = {"spamops_dev"}

RULE_FILES = sorted(
    [
        *(ROOT / "monitoring").glob("*.y*ml"),
        *(ROOT / "helm" / "spamops" / "files").glob("*.y*ml"),
        *(ROOT / "helm" / "spamops" / "templates").rglob("*.yaml"),
    ]
)
DOC_FILES = sorted([ROOT / "README.md", ROOT / "helm" / "spamops" / "README.md", *(ROOT / "docs").glob("*.md")])


def unknown_metrics(text: str) -> set[str]:
    """The ``spamops_*`` metric names in ``text`` that names.METRICS does not define."""
    unknown = set()
    for token in TOKEN.findall(text):
        if token in NOT_METRICS:
            continue
        if token.endswith("_"):  # a prefix, as in spamops_shadow_*
            if not any(m.startswith(token) for m in names.METRICS):
                unknown.add(token + "*")
            continue
        family = next((token.removesuffix(s) for s in SERIES_SUFFIXES if token.endswith(s)), token)
        if token not in names.METRICS and family not in names.METRICS:
            unknown.add(token)
    return unknown


def test_the_check_finds_a_metric_that_is_not_defined():
    promql = 'sum(rate(spamops_predictions_total{label="spam"}[5m])) / sum(rate(spamops_prediction_total[5m]))'
    assert unknown_metrics(promql) == {"spamops_prediction_total"}
    assert unknown_metrics("`spamops_spam_probability_bucket`, `spamops_shadow_*`, src/spamops_dev/ports.py") == set()
    assert unknown_metrics("spamops_nothing_*") == {"spamops_nothing_*"}


@pytest.mark.parametrize("path", RULE_FILES + DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_metric_the_rules_and_docs_name_is_defined(path):
    assert unknown_metrics(path.read_text()) == set(), f"{path.relative_to(ROOT)} names metrics spamops.names lacks"


def test_the_rules_and_docs_are_scanned_and_name_metrics():
    rules = ROOT / "helm" / "spamops" / "files" / "prometheus-rules.yaml"
    assert rules in RULE_FILES and ROOT / "docs" / "monitoring.md" in DOC_FILES
    assert len(set(TOKEN.findall(rules.read_text()))) >= 5


def test_the_default_rollout_queries_name_defined_metrics():
    queries = {
        "info": analysis.INFO,
        "latency": analysis.LATENCY,
        "predictions": analysis.PREDICTIONS,
        "probability": analysis.PROBABILITY,
        **{
            f"{provider} {i}": q
            for provider, (*selectors, _) in SUCCESS_RATE_PRESETS.items()
            for i, q in enumerate(selectors)
        },
    }
    assert {name: unknown_metrics(q) for name, q in queries.items() if unknown_metrics(q)} == {}
    assert queries["info"] == names.MODEL_INFO and queries["predictions"] == names.PREDICTIONS_TOTAL
    assert names.INFERENCE_RESPONSES_TOTAL in queries["predictor 0"]


def test_the_predictor_exports_its_metrics_under_the_contract_names():
    families = {family.name for family in REGISTRY.collect() if family.name.startswith("spamops_")}
    assert families, "no spamops_ metric registered"
    for family in families:
        assert family in names.METRICS or family + "_total" in names.METRICS, family
    for metric in (names.PREDICTIONS_TOTAL, names.MODEL_INFO, names.INFERENCE_LOG_BATCHES_TOTAL, names.SHADOW_READY):
        assert metric in families or metric.removesuffix("_total") in families, metric


def test_every_spamops_variable_the_chart_sets_is_defined():
    chart = "\n".join(p.read_text() for p in sorted((ROOT / "helm" / "spamops" / "templates").rglob("*.yaml")))
    set_by_chart = set(re.findall(r"- name: ((?:SPAMOPS_|SHADOW_)?[A-Z0-9_]*STORAGE_URI|SPAMOPS_[A-Z0-9_]+)\b", chart))
    assert {names.INFERENCE_LOG_URI_ENV, names.SHADOW_STORAGE_URI_ENV} <= set_by_chart
    assert set_by_chart <= names.ENV_NAMES
