"""Retraining: a seeded stratified split and a grid search over the KNN pipeline."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import numpy as np
from sklearn.model_selection import ParameterGrid, train_test_split
from sklearn.pipeline import Pipeline

from spamops.config import TrainConfig
from spamops.errors import BadInputError
from spamops.training.data import Dataset
from spamops.training.search import build_pipeline, grid, refit, scheduler_address, search

__all__ = ["Split", "TrainResult", "build_pipeline", "fit", "split_dataset"]


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
    """Grid-search the pipeline with stratified K-fold on the training part only, then refit the best.

    The decisions are ``GridSearchCV``'s; :mod:`spamops.training.search` says why it is exact and cheaper.
    """
    candidates = len(ParameterGrid(grid(cfg, len(split.y_train))))
    if progress is not None:
        where = "local" if cfg.backend == "local" else f"dask at {scheduler_address(cfg)}"
        print(
            f"grid search: {candidates} candidates x {cfg.cv_folds} folds on {len(split.y_train)} rows ({where})",
            file=progress,
            flush=True,
        )
    found = search(split.X_train, split.y_train, cfg)
    pipeline = refit(split.X_train, split.y_train, found.best_params)
    params = {k.removeprefix("knn__"): v for k, v in found.best_params.items()}
    return TrainResult(pipeline, params, found.best_score, candidates)
