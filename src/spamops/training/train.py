"""Retraining: a seeded stratified split and a grid search over the KNN pipeline."""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from typing import TextIO

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from spamops.config import TrainConfig
from spamops.errors import BadInputError
from spamops.training.data import Dataset


@dataclass(frozen=True)
class Split:
    """Train and held-out rows; the held-out rows are what every model is judged on."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class TrainResult:
    """The fitted pipeline and how the search chose it."""

    pipeline: Pipeline
    best_params: dict
    cv_score: float
    candidates: int


def build_pipeline() -> Pipeline:
    """Scaling matters for KNN: length spans hundreds, punct tens."""
    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier())])


def split_dataset(dataset: Dataset, cfg: TrainConfig) -> Split:
    """A stratified, seeded split, so a rerun on the same data judges on the same rows."""
    counts = np.bincount(dataset.y, minlength=2)
    min_per_class = max(cfg.cv_folds, 2)
    if counts.min() * (1 - cfg.test_size) < min_per_class or counts.min() * cfg.test_size < 1:
        raise BadInputError(
            f"{', '.join(src.uri for src in dataset.sources)}: too few rows per class to train "
            f"(ham={counts[0]}, spam={counts[1]}); "
            f"need at least {int(np.ceil(min_per_class / (1 - cfg.test_size)))} of each"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        dataset.X, dataset.y, test_size=cfg.test_size, random_state=cfg.seed, stratify=dataset.y
    )
    return Split(X_train, X_test, y_train, y_test)


def fit(split: Split, cfg: TrainConfig, progress: TextIO | None = sys.stderr) -> TrainResult:
    """Grid-search the pipeline with stratified K-fold on the training part only."""
    max_k = int(len(split.y_train) * (cfg.cv_folds - 1) / cfg.cv_folds)
    grid = {
        "knn__n_neighbors": [k for k in cfg.grid.n_neighbors if k <= max_k] or [1],
        "knn__weights": list(cfg.grid.weights),
        "knn__p": list(cfg.grid.p),
    }
    candidates = len(grid["knn__n_neighbors"]) * len(grid["knn__weights"]) * len(grid["knn__p"])
    if progress is not None:
        print(
            f"grid search: {candidates} candidates x {cfg.cv_folds} folds on {len(split.y_train)} rows",
            file=progress,
            flush=True,
        )
    search = GridSearchCV(
        build_pipeline(),
        grid,
        scoring=cfg.scoring,
        cv=StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=cfg.seed),
        n_jobs=cfg.n_jobs,
        refit=True,
        verbose=1 if progress is not None else 0,
        error_score="raise",
    )
    # scikit-learn prints its progress ("Fitting 5 folds ...") on stdout, which carries the -o json document.
    with warnings.catch_warnings(), contextlib.redirect_stdout(progress or sys.stderr):
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        try:
            search.fit(split.X_train, split.y_train)
        except ValueError as exc:
            raise BadInputError(f"train.scoring {cfg.scoring!r}: {exc}".splitlines()[0]) from None
    params = {k.removeprefix("knn__"): v for k, v in search.best_params_.items()}
    return TrainResult(search.best_estimator_, params, float(search.best_score_), candidates)
