"""The grid search decides exactly as scikit-learn's exhaustive ``GridSearchCV`` would.

Duplicate-heavy data is the hard case: neighbours tied at the k-th distance and training copies
at distance 0 under ``weights='distance'``.  Resampling the real 1k file gives exactly that.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from spamops.config import GridConfig, TrainConfig
from spamops.training.data import load_dataset
from spamops.training.evaluate import evaluate, predictions
from spamops.training.search import build_pipeline, grid, refit, search, unique_rows


def exhaustive(X: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> GridSearchCV:
    """Today's reference: scikit-learn's GridSearchCV over the same grid and folds."""
    return GridSearchCV(
        build_pipeline(),
        grid(cfg, len(y)),
        scoring=cfg.scoring,
        cv=StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=cfg.seed),
        refit=True,
        error_score="raise",
    ).fit(X, y)


@pytest.fixture(scope="module")
def resampled(real_data) -> tuple[np.ndarray, np.ndarray]:
    """6,000 rows drawn with replacement from the real 1k file: every point repeated, ties everywhere."""
    data = load_dataset([str(real_data / "smsspamcollection-1k.csv")])
    pick = np.random.default_rng(7).integers(0, len(data.y), size=6_000)
    return data.X[pick], data.y[pick]


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(),
        TrainConfig(scoring="roc_auc", seed=3, grid=GridConfig(n_neighbors=[1, 2, 7, 40])),
        TrainConfig(scoring="accuracy", cv_folds=3, grid=GridConfig(n_neighbors=[3, 9], p=[1, 3])),
    ],
    ids=["defaults", "roc_auc-even-k", "accuracy-3-folds-p3"],
)
def test_every_fold_score_and_the_choice_equal_gridsearchcv(resampled, cfg):
    X, y = resampled
    reference = exhaustive(X, y, cfg)

    found = search(X, y, cfg)

    assert found.candidates == list(reference.cv_results_["params"])
    folds = np.column_stack([reference.cv_results_[f"split{i}_test_score"] for i in range(cfg.cv_folds)])
    np.testing.assert_array_equal(found.fold_scores, folds)
    assert found.best_params == reference.best_params_
    assert found.best_score == reference.best_score_
    model = refit(X, y, found.best_params)
    np.testing.assert_array_equal(model.predict_proba(X), reference.best_estimator_.predict_proba(X))


def test_tiny_data_where_k_forces_brute_force_still_matches(real_data):
    data = load_dataset([str(real_data / "smsspamcollection-1k.csv")])
    X, y = data.X[:60], data.y[:60]
    cfg = TrainConfig(grid=GridConfig(n_neighbors=[1, 5, 23, 25]))  # 25 >= 48 // 2: scikit-learn goes brute force
    reference = exhaustive(X, y, cfg)
    found = search(X, y, cfg)
    np.testing.assert_array_equal(found.mean_scores, reference.cv_results_["mean_test_score"])
    assert found.best_params == reference.best_params_


def test_evaluation_asks_each_distinct_row_once_and_gets_the_models_own_answers(resampled):
    X, y = resampled
    model = refit(X, y, {"knn__n_neighbors": 15, "knn__weights": "distance", "knn__p": 2})

    labels, p_spam = predictions(model, X)

    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_array_equal(p_spam, model.predict_proba(X)[:, 1])
    assert evaluate(model, X, y).rows == len(y)
    keys, inverse = unique_rows(X)
    assert len(keys) < len(X) / 5
    np.testing.assert_array_equal(keys[inverse], X)
