"""The feature definition shared by training and serving (the feature-store contract).

Training turns ``label,message`` rows into features here and the predictor turns
request texts into features here, so the two can never disagree.  Bump
``FEATURE_SPEC_VERSION`` whenever the meaning of a feature changes: the model
card records it and the predictor refuses a model built on another spec.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Literal

import numpy as np

from spamops import names

FEATURE_SPEC_VERSION = "1"
FEATURE_NAMES: tuple[str, ...] = ("length", "punct")
Label = Literal["ham", "spam"]
LABELS: tuple[Label, ...] = ("ham", "spam")  # index = class id; spam (1) is the positive class


def as_label(value: str) -> Label | None:
    """``value`` as one of :data:`LABELS`, or ``None`` when it is neither."""
    return "ham" if value == "ham" else "spam" if value == "spam" else None


_PUNCTUATION = frozenset(string.punctuation)
# Upper bounds of the histogram buckets of each feature: the predictor's Prometheus
# histograms and the training reference in the model card use the same ones, so the
# drift monitor compares like with like.
FEATURE_BUCKETS: dict[str, tuple[float, ...]] = {
    "length": (10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 200.0, 300.0, 500.0, 1000.0),
    "punct": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0),
}
# The predictor's Prometheus histogram of each feature (labelled ``model_version``).
FEATURE_METRICS: dict[str, str] = {
    "length": names.INPUT_LENGTH,
    "punct": names.INPUT_PUNCT,
}


def message_features(message: str) -> tuple[int, int]:
    """``(length, punct)`` of one message: characters, and characters in ``string.punctuation``."""
    return len(message), sum(1 for ch in message if ch in _PUNCTUATION)


def features_matrix(messages: Iterable[str]) -> np.ndarray:
    """An ``(n, 2)`` float array of :func:`message_features`, the model's input layout."""
    rows = [message_features(m) for m in messages]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
