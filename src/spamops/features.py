"""The feature definition shared by training and serving (the feature-store contract).

Training turns ``label,message`` rows into features here and the predictor turns
request texts into features here, so the two can never disagree.  Bump
``FEATURE_SPEC_VERSION`` whenever the meaning of a feature changes: the model
card records it and the predictor refuses a model built on another spec.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

import numpy as np

FEATURE_SPEC_VERSION = "1"
FEATURE_NAMES: tuple[str, ...] = ("length", "punct")
LABELS: tuple[str, ...] = ("ham", "spam")  # index = class id; spam (1) is the positive class
_PUNCTUATION = frozenset(string.punctuation)


def message_features(message: str) -> tuple[int, int]:
    """``(length, punct)`` of one message: characters, and characters in ``string.punctuation``."""
    return len(message), sum(1 for ch in message if ch in _PUNCTUATION)


def features_matrix(messages: Iterable[str]) -> np.ndarray:
    """An ``(n, 2)`` float array of :func:`message_features`, the model's input layout."""
    rows = [message_features(m) for m in messages]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
