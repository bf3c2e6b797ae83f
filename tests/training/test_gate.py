"""Gate rules: absolute floors on the challenger's rows, and no regression against production on either held-out set."""

from __future__ import annotations

import re

import numpy as np

from spamops.config import GateConfig
from spamops.records import Comparison, Metrics
from spamops.training.gate import decide, table

GOOD_METRICS = {
    "rows": 100,
    "accuracy": 0.95,
    "balanced_accuracy": 0.9,
    "spam_precision": 0.8,
    "spam_recall": 0.8,
    "spam_f1": 0.79,
    "roc_auc": 0.9,
    "confusion_matrix": [[80, 5], [3, 12]],
    "baseline_accuracy": 0.85,
}
GOOD = Metrics.model_validate(GOOD_METRICS)


def _comparison(rows: str, challenger_f1: float, champion_f1: float) -> Comparison:
    return Comparison(
        rows=rows,
        dataset_sha256=("a" if rows == "challenger" else "b") * 64,
        challenger=Metrics.model_validate({**GOOD_METRICS, "spam_f1": challenger_f1}),
        champion=Metrics.model_validate({**GOOD_METRICS, "spam_f1": champion_f1}),
    )


def test_a_challenger_within_tolerance_on_both_sets_passes():
    verdict = decide(GOOD, GateConfig(), [_comparison("challenger", 0.79, 0.80), _comparison("champion", 0.79, 0.80)])
    assert verdict.passed
    assert [r.rule for r in verdict.rules][-2:] == ["champion_on_challenger_rows", "champion_on_champion_rows"]


def test_regressing_on_productions_rows_alone_is_refused_and_the_table_shows_both():
    """The old gate compared on the challenger's rows only: a model trained on other data passed trivially."""
    verdict = decide(GOOD, GateConfig(), [_comparison("challenger", 0.94, 0.10), _comparison("champion", 0.41, 0.62)])
    assert not verdict.passed
    assert [r.rule for r in verdict.rules if not r.passed] == ["champion_on_champion_rows"]
    assert np.isclose(verdict.rules[-1].threshold, 0.60)
    text = table(verdict)
    assert "on the challenger's 100 held-out rows" in text and "on production's 100 held-out rows" in text


def test_regressing_on_its_own_rows_is_refused():
    verdict = decide(GOOD, GateConfig(), [_comparison("challenger", 0.70, 0.80), _comparison("champion", 0.9, 0.8)])
    assert [r.rule for r in verdict.rules if not r.passed] == ["champion_on_challenger_rows"]


def test_no_production_and_production_itself_are_said_as_such():
    assert "no production model yet" in decide(GOOD, GateConfig()).rules[-1].detail
    itself = decide(GOOD, GateConfig(), itself=True)
    assert itself.passed and "comparing production with itself" in itself.rules[-1].detail


def _gate_cells(table: str) -> list[str]:
    """The measured and threshold cells, and every number in the detail column, of a gate table."""
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| rule")]
    assert rows, table
    cells = []
    for row in rows:
        _, _, measured, threshold, _, detail, _ = (c.strip() for c in row.split("|"))
        cells += [measured, threshold, *re.findall(r"\d+\.\d+", detail)]
    return cells


def test_every_gate_table_writes_every_number_with_four_decimals(cli, store):
    """A table of numbers only (the second run, with a champion) was re-formatted by tabulate: 0.88 beside 0.8800."""
    first = cli("train", "--store", store, "--quiet")
    second = cli("train", "--store", store, "--quiet", "--force-new", "--no-promote")
    assert first.code == second.code == 0, second.err
    version = cli("models", "list", "--store", store, "-o", "json").json()["versions"][0]["version"]
    tables = {
        "train without a champion": first.out,
        "train against a champion": second.out,
        "models show": cli("models", "show", version, "--store", store).out,
        "gate": cli("gate", version, "--store", store).out,
        "report.md": (store / "spam" / version / "report.md").read_text(),
    }
    for where, text in tables.items():
        table = text[text.index("| rule") :].split("\n\n", 1)[0]
        odd = [c for c in _gate_cells(table) if c != "-" and not re.fullmatch(r"\d+\.\d{4}", c)]
        assert not odd, f"{where}: {odd}\n{table}"
