"""The model card: everything needed to trust, reproduce and monitor one version."""

from __future__ import annotations

import platform
from datetime import datetime
from importlib.metadata import version as dist_version

import numpy as np

from spamops import __version__
from spamops.config import RunConfig
from spamops.features import FEATURE_BUCKETS, FEATURE_NAMES, FEATURE_SPEC_VERSION
from spamops.records import CardContent, ChampionRecord, DatasetsRecord, GateRecord, Metrics
from spamops.training.data import Dataset
from spamops.training.train import TrainResult

PERCENTILES = list(range(101))
_LIBRARIES = ("scikit-learn", "numpy", "joblib", "scipy")


def feature_statistics(X: np.ndarray) -> dict:
    """Per-feature summary of the training rows: what explanations compare a message with, and the
    spread (``std``) the drift monitor norms its Wasserstein distance by."""
    stats = {}
    for i, name in enumerate(FEATURE_NAMES):
        col = X[:, i]
        stats[name] = {
            "count": int(col.size),
            "mean": float(col.mean()),
            "std": float(col.std()),
            "min": float(col.min()),
            "max": float(col.max()),
            "percentiles": [float(v) for v in np.percentile(col, PERCENTILES)],
        }
    return stats


def feature_reference(X: np.ndarray, class_counts: dict[str, int]) -> dict:
    """The drift monitor's reference: training rows counted in the predictor's histogram buckets.

    ``counts[i]`` holds the rows with ``bounds[i-1] < value <= bounds[i]`` (Prometheus'
    ``le`` semantics) and the last entry those above every bound, so production bucket
    increases compare with it directly.  ``spam_rate`` is the training base rate.
    """
    buckets = {}
    for i, name in enumerate(FEATURE_NAMES):
        bounds = FEATURE_BUCKETS[name]
        index = np.searchsorted(np.asarray(bounds), X[:, i], side="left")
        buckets[name] = {
            "bounds": list(bounds),
            "counts": np.bincount(index, minlength=len(bounds) + 1).astype(int).tolist(),
        }
    total = sum(class_counts.values())
    return {"buckets": buckets, "spam_rate": class_counts.get("spam", 0) / total if total else None}


def build_card(
    *,
    created_at: datetime,
    dataset: Dataset,
    result: TrainResult,
    metrics: Metrics,
    champion: ChampionRecord | None,
    decision: GateRecord,
    X_train: np.ndarray,
    config: RunConfig,
    datasets: DatasetsRecord,
) -> CardContent:
    """The card's content, validated; the registry adds version, URIs and checksums when it stores it."""
    raw = {
        "created_at": created_at,
        "code_version": __version__,
        "python": platform.python_version(),
        "libraries": {name: dist_version(name) for name in _LIBRARIES},
        "feature_spec": {"version": FEATURE_SPEC_VERSION, "names": list(FEATURE_NAMES)},
        "data": dataset.record(),
        "datasets": datasets,
        "params": result.best_params,
        "training": {
            "scoring": config.train.scoring,
            "cv_score": result.cv_score,
            "candidates": result.candidates,
            "train_rows": int(len(X_train)),
        },
        "config": config,
        "metrics": metrics,
        "champion": champion,
        "gate": decision,
        "feature_statistics": feature_statistics(X_train),
        "feature_reference": feature_reference(X_train, dataset.class_counts),
    }
    return CardContent.model_validate(raw)
