"""Evaluation on held-out rows, always next to the majority-class baseline.

About 85% of real SMS are ham, so accuracy alone flatters a useless model; the
baseline and the spam-class metrics make that visible.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from spamops.records import Metrics
from spamops.training.search import unique_rows


def spam_probability(model, X: np.ndarray) -> np.ndarray:
    """P(spam) from any classifier exposing ``predict_proba`` with classes [0, 1]."""
    return predictions(model, X)[1]


def predictions(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label and P(spam) of every row, asking the model once per *distinct* row.

    A fitted classifier's answer for a row depends on that row alone, so this is exactly
    ``(model.predict(X), model.predict_proba(X)[:, spam])``; a KNN over a million rows with a
    few thousand distinct feature pairs is then evaluated in a fraction of a second.
    """
    keys, inverse = unique_rows(X)
    labels = np.asarray(model.predict(keys))[inverse]
    classes = list(getattr(model, "classes_", [0, 1]))
    if 1 not in classes:
        return labels, np.zeros(len(X))
    return labels, model.predict_proba(keys)[:, classes.index(1)][inverse]


def evaluate(model, X: np.ndarray, y: np.ndarray) -> Metrics:
    """All metrics the gate, the card and the report use."""
    y_pred, scores = predictions(model, X)
    majority = int(np.bincount(y, minlength=2).argmax())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return Metrics(
            rows=int(len(y)),
            accuracy=float(accuracy_score(y, y_pred)),
            balanced_accuracy=float(balanced_accuracy_score(y, y_pred)),
            spam_precision=float(precision_score(y, y_pred, zero_division=0)),
            spam_recall=float(recall_score(y, y_pred, zero_division=0)),
            spam_f1=float(f1_score(y, y_pred, zero_division=0)),
            roc_auc=float(roc_auc_score(y, scores)) if len(set(y.tolist())) == 2 else float("nan"),
            confusion_matrix=confusion_matrix(y, y_pred, labels=[0, 1]).tolist(),
            baseline_accuracy=float(np.mean(y == majority)),
        )
