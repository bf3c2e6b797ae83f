"""Plain explanations of one prediction: where its features sit, which neighbours voted, one sentence.

A KNN model's reasons are its neighbours, so the explanation is the model's own
evidence rather than a post-hoc approximation: the ``k`` training rows that
voted (their label, their distance in the scaled space KNN measures in, and
their two feature values, never any training text) and where the instance sits
in the training distribution recorded in the model card's percentiles.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from spamops.features import FEATURE_NAMES, LABELS
from spamops.records import FeatureStatistics

_NOUNS = {"length": ("character", "characters"), "punct": ("punctuation mark", "punctuation marks")}
_MORE = {"length": ("longer", "shorter"), "punct": ("more", "fewer")}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def position(value: float, stats: FeatureStatistics | None) -> dict:
    """Where ``value`` sits among the training values summarised by ``stats`` (a card entry).

    ``share_below``/``share_above`` are the percentages of training messages with a
    smaller/larger value, read off the card's 101 percentiles (so ties, such as the
    many messages without punctuation, count on neither side).
    """
    result: dict[str, Any] = {"value": _number(value)}
    if stats is None:
        return result
    points = stats.percentiles
    if len(points) == 101:
        below = max(0, bisect.bisect_left(points, value) - 1)
        above = max(0, 100 - bisect.bisect_right(points, value))
        result.update(share_below=below, share_above=above)
    result.update(
        training_min=round(stats.min, 3),
        training_max=round(stats.max, 3),
        training_mean=round(stats.mean, 3),
        within_training_range=bool(stats.min <= value <= stats.max),
    )
    return result


def _noun(name: str, value: float) -> str:
    one, many = _NOUNS[name]
    return f"{_number(value)} {one if value == 1 else many}"


def _relative(name: str, pos: dict) -> str:
    if "share_below" not in pos:
        return ""
    more, less = _MORE[name]
    if pos["share_below"] >= pos["share_above"]:
        return f" ({more} than {pos['share_below']}% of training messages)"
    return f" ({less} than {pos['share_above']}% of training messages)"


def sentence(label: str, probability: float, positions: dict[str, dict], neighbours: list[dict]) -> str:
    """E.g. "spam (0.80): 155 characters (longer than 96% of training messages) and 6 punctuation marks
    (more than 90% of training messages); 4 of its 5 nearest training messages are spam."."""
    parts = [f"{_noun(n, positions[n]['value'])}{_relative(n, positions[n])}" for n in FEATURE_NAMES]
    text = f"{label} ({probability:.2f}): {parts[0]} and {parts[1]}"
    if neighbours:
        k = len(neighbours)
        agree = sum(1 for nb in neighbours if nb["label"] == label)
        if k == 1:
            text += f"; its nearest training message is {neighbours[0]['label']}"
        elif agree == k:
            text += f"; all {k} of its nearest training messages are {label}"
        else:
            text += f"; {agree} of its {k} nearest training messages are {label}"
    return text + "."


class Explainer:
    """Explanations for one loaded pipeline (``StandardScaler`` then ``KNeighborsClassifier``)."""

    def __init__(self, pipeline: Any, feature_statistics: Mapping[str, FeatureStatistics]) -> None:
        self.stats = feature_statistics
        steps = getattr(pipeline, "steps", None)
        knn = steps[-1][1] if steps else pipeline
        self.knn = knn if hasattr(knn, "kneighbors") else None
        self.transform = pipeline[:-1] if steps and len(steps) > 1 else None
        self.weights = str(getattr(self.knn, "weights", "uniform")) if self.knn is not None else None
        # The neighbours' raw feature values, recovered once here rather than per request:
        # KNeighborsClassifier keeps its training rows (scaled) and encoded labels in _fit_X/_y;
        # there is no public accessor, and these have been stable across scikit-learn releases.
        self._fit_raw: np.ndarray | None = None
        if self.knn is not None:
            fit = np.asarray(self.knn._fit_X)
            raw = self.transform.inverse_transform(fit) if self.transform is not None else fit
            self._fit_raw = np.rint(raw).astype(np.int64)

    def _neighbours(self, X: np.ndarray) -> list[list[dict]]:
        if self.knn is None or self._fit_raw is None:  # both or neither (see __init__)
            return [[] for _ in range(len(X))]
        scaled = self.transform.transform(X) if self.transform is not None else X
        distances, indices = self.knn.kneighbors(scaled)
        fit_raw = self._fit_raw[indices]  # (rows, k, features)
        labels = np.asarray(self.knn.classes_)[self.knn._y[indices]]
        out = []
        for r in range(len(X)):
            out.append(
                [
                    {
                        "label": LABELS[int(labels[r, j])],
                        "distance": round(float(distances[r, j]), 6),
                        **{name: int(fit_raw[r, j, c]) for c, name in enumerate(FEATURE_NAMES)},
                    }
                    for j in range(indices.shape[1])
                ]
            )
        return out

    def explain(
        self,
        rows: Sequence[tuple[float, float]],
        probability: Sequence[float] | np.ndarray,
        is_spam: Sequence[bool] | np.ndarray,
        version: str,
    ) -> list[dict]:
        X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
        all_neighbours = self._neighbours(X)
        explanations = []
        for row, p, spam, neighbours in zip(rows, probability, is_spam, all_neighbours, strict=True):
            label = LABELS[int(spam)]
            positions = {
                name: position(float(v), self.stats.get(name)) for name, v in zip(FEATURE_NAMES, row, strict=True)
            }
            explanations.append(
                {
                    "label": label,
                    "spam_probability": float(p),
                    "model_version": version,
                    "features": {name: _number(v) for name, v in zip(FEATURE_NAMES, row, strict=True)},
                    "feature_position": positions,
                    "neighbours": neighbours,
                    "neighbour_weighting": self.weights,
                    "explanation": sentence(label, float(p), positions, neighbours),
                }
            )
        return explanations
