"""The exhaustive KNN grid search, computed at the cost of the *distinct* rows, with the same result.

Why this is not ``GridSearchCV``: both features are small counts, so a million messages hold only
a few thousand distinct ``(length, punct)`` points, and ``GridSearchCV`` pays for every raw row
in every one of its ``candidates x folds`` fits.  This search makes exactly the same decisions
(same folds, same fitted estimators, same scorer, same mean-and-first-best rule) and is cheaper
for three reasons, each of which leaves every prediction bit for bit unchanged:

1. **One fitted tree per (fold, p).**  ``KNeighborsClassifier.fit`` stores the scaled rows and
   builds a tree that depends on the metric (``p``) but not on ``n_neighbors`` or ``weights``
   (those are read at predict time).  So each fold's scaler and tree are built once per ``p``,
   and the candidates only change ``n_neighbors`` / ``weights`` with ``set_params``.  When
   ``n_neighbors`` would switch scikit-learn's ``algorithm='auto'`` choice between tree and brute
   force, the estimator is refitted for that candidate.
2. **Each distinct held-out row is asked once.**  A fitted pipeline's prediction for a row is a
   function of that row alone, so scoring the unique rows and broadcasting back
   (``np.unique(..., return_inverse=True)``) gives the same prediction vector for the fold; ties
   and ``weights='distance'`` with training duplicates at distance 0 are decided by the very same
   scikit-learn code on the very same query.
3. **One neighbour query per (fold, p, n_neighbors).**  ``uniform`` and ``distance`` weights vote
   over the same neighbours; the query is memoised and both weightings reuse it.
4. **Each distinct (row, label) pair is scored once**, with its count as ``sample_weight``:
   the metrics are sums over rows, and sums of whole-number weights are exact.

The chosen model is then refitted on the whole training part, as ``GridSearchCV(refit=True)``
does, so the artifact is the stock ``Pipeline(StandardScaler, KNeighborsClassifier)``.
``tests/training/test_search.py`` checks equality with ``GridSearchCV`` (all fold scores, the
chosen parameters, the refitted model's predictions) on duplicate-heavy data.

The ``(fold, p)`` tasks go through :class:`joblib.Parallel`, so ``train.backend: dask`` fans them
out to a Dask cluster with joblib's ``dask`` backend without changing a single number.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from spamops.config import TrainConfig
from spamops.errors import BadInputError, SpamopsError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  # Dask's own variable: a Dask client reads it too


@dataclass(frozen=True)
class SearchResult:
    """What ``GridSearchCV`` would report: the candidates in its order and their mean CV scores."""

    candidates: list[dict]
    mean_scores: np.ndarray
    fold_scores: np.ndarray  # (candidates, folds)
    best_index: int

    @property
    def best_params(self) -> dict:
        return self.candidates[self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.mean_scores[self.best_index])


def unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-column float array and the inverse index that rebuilds ``X``."""
    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # -0.0 -> 0.0: one key per value
    if X.shape[1] == 2:  # a complex view sorts lexicographically (real, then imaginary): far faster than axis=0
        keys, inverse = np.unique(X.view(np.complex128).ravel(), return_inverse=True)
        return np.column_stack([keys.real, keys.imag]), inverse.ravel()
    keys, inverse = np.unique(X, axis=0, return_inverse=True)
    return keys, inverse.ravel()


class _MemoKNN(KNeighborsClassifier):
    """A ``KNeighborsClassifier`` that answers repeated neighbour queries on the same array from memory.

    Used only inside the search (the artifact is a plain ``KNeighborsClassifier``): ``predict``
    and ``predict_proba`` are scikit-learn's own and only their ``kneighbors`` call is reused.
    """

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        if X is None:
            return super().kneighbors(X, n_neighbors, return_distance)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if getattr(self, "_memo_for", None) is not X:
            self._memo_for, self._memo = X, {}
        if k not in self._memo:
            self._memo[k] = super().kneighbors(X, k, return_distance=True)
        dist, ind = self._memo[k]
        return (dist, ind) if return_distance else ind


class _DistinctRowView(ClassifierMixin, BaseEstimator):
    """The fold's pipeline as the scorer sees it: asked once per distinct row, answers broadcast back."""

    def __init__(self, scaler: StandardScaler, knn: KNeighborsClassifier) -> None:
        self.scaler = scaler
        self.knn = knn

    @property
    def classes_(self) -> np.ndarray:
        return self.knn.classes_

    def _distinct(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_rows_for", None) is not X:
            keys, inverse = unique_rows(X)
            self._rows_for, self._rows = X, (self.scaler.transform(keys), inverse)
        return self._rows

    def predict(self, X: np.ndarray) -> np.ndarray:
        scaled, inverse = self._distinct(X)
        return self.knn.predict(scaled)[inverse]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        scaled, inverse = self._distinct(X)
        return self.knn.predict_proba(scaled)[inverse]


def _uses_brute(n_neighbors: int, n_fit: int) -> bool:
    """scikit-learn's ``algorithm='auto'`` rule for two features: brute force once k >= n/2."""
    return n_neighbors >= n_fit // 2


def _score_fold(
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    scoring: str,
    todo: list[tuple[int, dict]],
) -> list[tuple[int, float]]:
    """Score the candidates ``todo`` (index, params) that share one fold and one ``p``.

    A module-level function of plain arrays, so joblib can ship it to another process or a Dask
    worker; every task gets the same ``X`` and ``y`` objects (joblib's dask backend sends them to
    the cluster once) and selects its fold itself, so memory does not grow with the task count.
    """
    X_fit, y_fit = X[fit_idx], y[fit_idx]
    rows, labels, counts = distinct_labelled_rows(X[val_idx], y[val_idx])
    scorer = get_scorer(scoring)
    scaler = StandardScaler().fit(X_fit)
    X_fit_scaled = scaler.transform(X_fit)
    views: dict[bool, _DistinctRowView] = {}  # keyed by "brute force": scikit-learn's auto choice
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for index, params in todo:
            brute = _uses_brute(params["knn__n_neighbors"], len(y_fit))
            if brute not in views:
                knn = _MemoKNN(n_neighbors=params["knn__n_neighbors"], p=params["knn__p"])
                views[brute] = _DistinctRowView(scaler, knn.fit(X_fit_scaled, y_fit))
            view = views[brute]
            view.knn.set_params(n_neighbors=params["knn__n_neighbors"], weights=params["knn__weights"])
            results.append((index, float(scorer(view, rows, labels, sample_weight=counts))))
    return results


def distinct_labelled_rows(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``(row, label)`` pairs of a fold and how often each occurs.

    Scoring them with the counts as ``sample_weight`` is scoring every row: scikit-learn's
    classification metrics are sums over rows (confusion counts, ranked score curves with ties
    merged), and integer weights are sums of whole numbers, exact in float64.
    ``tests/training/test_search.py`` holds every fold score equal to ``GridSearchCV``'s.
    """
    keys, inverse = unique_rows(X)
    classes, codes = np.unique(y, return_inverse=True)
    pairs, counts = np.unique(inverse * len(classes) + codes.ravel(), return_counts=True)
    return keys[pairs // len(classes)], classes[pairs % len(classes)], counts


def grid(cfg: TrainConfig, n_train: int) -> dict[str, list]:
    """The searched grid, in ``GridSearchCV``'s parameter names; k never exceeds a fold's training rows."""
    max_k = int(n_train * (cfg.cv_folds - 1) / cfg.cv_folds)
    return {
        "knn__n_neighbors": [k for k in cfg.grid.n_neighbors if k <= max_k] or [1],
        "knn__weights": list(cfg.grid.weights),
        "knn__p": list(cfg.grid.p),
    }


def search(X: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> SearchResult:
    """Score every candidate on every fold, exactly as ``GridSearchCV`` would, and pick the first best."""
    try:
        get_scorer(cfg.scoring)
    except ValueError as exc:
        raise BadInputError(f"train.scoring {cfg.scoring!r}: {exc}".splitlines()[0]) from None
    candidates = list(ParameterGrid(grid(cfg, len(y))))
    folds = list(StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=cfg.seed).split(X, y))
    tasks = []
    for f, (fit_idx, val_idx) in enumerate(folds):
        for p in dict.fromkeys(c["knn__p"] for c in candidates):
            todo = [(i, c) for i, c in enumerate(candidates) if c["knn__p"] == p]
            tasks.append((f, delayed(_score_fold)(X, y, fit_idx, val_idx, cfg.scoring, todo)))
    with _backend(cfg):
        try:
            outputs = Parallel(n_jobs=cfg.n_jobs if cfg.backend == "local" else -1)(task for _, task in tasks)
        except ValueError as exc:
            raise BadInputError(f"train.scoring {cfg.scoring!r}: {exc}".splitlines()[0]) from None
    fold_scores = np.full((len(candidates), len(folds)), np.nan)
    for (f, _), scored in zip(tasks, outputs, strict=True):
        for index, score in scored:
            fold_scores[index, f] = score
    means = np.average(fold_scores, axis=1)
    ranked = np.where(np.isnan(means), -np.inf, means)  # GridSearchCV ranks NaN last
    return SearchResult(candidates, means, fold_scores, int(np.argmax(ranked)))


def refit(X: np.ndarray, y: np.ndarray, params: dict) -> Pipeline:
    """The chosen candidate fitted on all training rows: what ``GridSearchCV(refit=True)`` keeps."""
    return clone(build_pipeline()).set_params(**params).fit(X, y)


def build_pipeline() -> Pipeline:
    """Scaling matters for KNN: length spans hundreds, punct tens."""
    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier())])


def scheduler_address(cfg: TrainConfig) -> str:
    """The Dask scheduler to use: ``train.dask_scheduler``, else ``$DASK_SCHEDULER_ADDRESS``."""
    address = cfg.dask_scheduler or os.environ.get(SCHEDULER_ENV, "")
    if not address:
        raise BadInputError(
            f"train.backend is 'dask' but no scheduler is named: set train.dask_scheduler "
            f"(e.g. tcp://spamops-dask-scheduler:8786) or {SCHEDULER_ENV}"
        )
    return address


@contextmanager
def _backend(cfg: TrainConfig) -> Iterator[None]:
    """joblib's own ``dask`` backend on a client of the configured scheduler; no scheduler of ours."""
    if cfg.backend == "local":
        yield
        return
    address = scheduler_address(cfg)
    from distributed import Client

    try:
        client = Client(address, timeout=cfg.dask_connect_timeout_seconds, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SpamopsError(
            f"train.dask_scheduler {address}: cannot reach the Dask scheduler ({exc}); "
            "check the address and that the DaskCluster is running"
        ) from None
    try:
        with client.as_current(), parallel_config(backend="dask"):
            yield
    finally:
        client.close()
