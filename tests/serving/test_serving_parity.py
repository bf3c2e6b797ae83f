"""Training/serving parity: the predictor's answers are the pipeline's answers, cell by cell.

The decision table is only an optimisation if it can never disagree with the
model, so it is checked against one-row ``predict_proba`` calls (the way a
stock server calls the model) for every integer (length, punct) pair in the
training range, for the model trained here and for KNN variants whose ties
(k even, distance weights) are the hard cases; and off the grid, where the
pipeline answers itself.
"""

from __future__ import annotations

import csv
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from spamops.features import features_matrix
from spamops.records import FeatureStatistics
from spamops.serving.artifact import load_artifact
from spamops.serving.lookup import DecisionTable, grid_bounds
from spamops.training.demo_data import demo_data_path
from spamops.training.evaluate import spam_probability


def demo_texts_and_labels() -> tuple[list[str], np.ndarray]:
    with demo_data_path().open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["message"] for r in rows], np.array([r["label"] == "spam" for r in rows], dtype=int)


def single_row_reference(pipeline, X: np.ndarray) -> tuple[list[float], list[bool]]:
    probs, labels = [], []
    for row in X:
        proba = pipeline.predict_proba(row[None, :])[0]
        probs.append(float(proba[1]))
        labels.append(bool(pipeline.predict(row[None, :])[0] == 1))
    return probs, labels


def grid_of(table: DecisionTable) -> np.ndarray:
    return np.array(
        [(length, punct) for length in range(table.max_length + 1) for punct in range(table.max_punct + 1)], dtype=float
    )


def variants() -> list:
    texts, y = demo_texts_and_labels()
    X = features_matrix(texts)
    out = []
    for k, weights, p in [(4, "uniform", 2), (7, "distance", 2), (6, "distance", 1), (25, "uniform", 1)]:
        model = Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(k, weights=weights, p=p))])
        out.append(pytest.param(model.fit(X, y), id=f"k{k}-{weights}-p{p}"))
    return out


def as_list(values) -> list:
    """Scores of a tensor stay numpy arrays until the response needs them; compare their Python values."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def assert_table_matches_single_rows(pipeline, max_length: int, max_punct: int) -> None:
    table = DecisionTable(pipeline, max_length, max_punct)
    grid = grid_of(table)
    ref_probs, ref_labels = single_row_reference(pipeline, grid)
    for scores in (table.score([tuple(int(v) for v in row) for row in grid]), table.score(grid)):
        assert scores.fallbacks == 0
        assert as_list(scores.probability) == ref_probs  # exact equality, not approx
        assert as_list(scores.is_spam) == ref_labels


def test_every_training_range_cell_of_the_served_model_matches(model_dir: Path):
    artifact = load_artifact(model_dir)
    max_length, max_punct = grid_bounds(artifact.feature_statistics, 5000, 1000)
    assert max_length == artifact.feature_statistics["length"].max
    assert max_punct == artifact.feature_statistics["punct"].max
    assert_table_matches_single_rows(artifact.pipeline, max_length, max_punct)


@pytest.mark.parametrize("pipeline", variants())
def test_every_cell_matches_for_knn_variants_with_ties(pipeline):
    texts, _ = demo_texts_and_labels()
    X = features_matrix(texts)
    assert_table_matches_single_rows(pipeline, int(X[:, 0].max()), int(X[:, 1].max()))


@pytest.mark.parametrize("pipeline", variants()[:2])
def test_off_grid_and_fractional_inputs_fall_back_to_the_pipeline(pipeline):
    rng = np.random.default_rng(7)
    table = DecisionTable(pipeline, 60, 4)  # a deliberately small grid, so plenty falls off it
    rows = np.column_stack(
        [
            np.concatenate([rng.integers(61, 5000, 200), rng.uniform(0, 60, 100), rng.integers(0, 60, 100)]),
            np.concatenate([rng.integers(0, 300, 200), rng.uniform(0, 4, 100), rng.integers(5, 300, 100)]),
        ]
    ).astype(float)
    on_grid = (rows[:, 0] <= 60) & (rows[:, 1] <= 4) & (rows == np.floor(rows)).all(axis=1)
    ref_probs, ref_labels = single_row_reference(pipeline, rows)
    for scores in (table.score([tuple(r) for r in rows.tolist()]), table.score(rows)):  # row-wise and vectorised
        assert scores.fallbacks == len(rows) - int(on_grid.sum())
        assert as_list(scores.probability) == ref_probs
        assert as_list(scores.is_spam) == ref_labels


def test_served_probabilities_equal_the_training_code_over_http(predictor, model_dir: Path):
    """Texts through the predictor equal predict_proba on features computed by spamops.features."""
    texts, _ = demo_texts_and_labels()
    texts += ["", "!!!", "a" * 3000, "Ünïcödé ✓ — ok?"]
    pipeline = joblib.load(model_dir / "model.joblib")
    want = spam_probability(pipeline, features_matrix(texts)).tolist()
    got = []
    for start in range(0, len(texts), 50):  # the fixture predictor takes at most 50 per request
        reply = predictor.post_json("/v1/models/spam:predict", {"instances": texts[start : start + 50]})
        assert reply.status == 200, reply.body
        got += [p["spam_probability"] for p in reply.json()["predictions"]]
    assert got == want


def _up_to(maximum: float) -> FeatureStatistics:
    """A card's statistics of a feature whose training values reach ``maximum``."""
    return FeatureStatistics(count=2, mean=maximum / 2, std=maximum / 2, min=0.0, max=maximum, percentiles=[])


def test_grid_bounds_follow_the_training_range_and_the_caps():
    stats = {"length": _up_to(910.0), "punct": _up_to(133.0)}
    assert grid_bounds(stats, 5000, 1000) == (910, 133)
    assert grid_bounds(stats, 500, 50) == (500, 50)
    assert grid_bounds(stats, 5000, 1000, max_cells=134 * 101) == (100, 133)
    assert grid_bounds({"length": _up_to(10.0)}, 5000, 1000) == (10, 0)  # no punct statistics: an empty axis


def test_grid_bounds_honour_max_cells_when_the_punct_axis_alone_exceeds_it():
    stats = {"length": _up_to(910.0), "punct": _up_to(133.0)}
    length, punct = grid_bounds(stats, 5000, 1000, max_cells=50)
    assert (length + 1) * (punct + 1) <= 50 and (length, punct) == (0, 49)
