"""Answer predictions from a table precomputed with the pipeline itself, falling back to the pipeline.

Why: the model is a ``Pipeline(StandardScaler, KNeighborsClassifier)`` over two
*integer* features, and one ``predict_proba`` call costs about a millisecond and
a half of Python and tree search per request, which is what bounded the stock
servers.  Both features are counts, so the pipeline's whole input space inside
the training range is a small grid: at load time we ask the pipeline for the
spam probability of every ``(length, punct)`` cell once (in a few batched calls)
and afterwards answer by indexing.  Inputs outside the grid, or non-integer
feature pairs sent by a client, go to the pipeline exactly as before, so every
answer is the pipeline's own answer; ``tests/serving/test_parity.py`` proves it
cell by cell.

The label follows ``KNeighborsClassifier.predict``: spam when the spam column of
``predict_proba`` is strictly larger than the ham column (ties go to ham,
the first class, as ``argmax`` does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spamops.features import FEATURE_NAMES

N_FEATURES = len(FEATURE_NAMES)
Row = tuple[float, float]  # (length, punct) as the client or the feature code gave them
_CHUNK_ROWS = 65_536  # bounds the temporary memory of the load-time batch calls


@dataclass(frozen=True)
class Scores:
    """Per-row spam probability and label, plus how many rows needed the pipeline."""

    probability: list[float]
    is_spam: list[bool]
    fallbacks: int


def grid_bounds(
    feature_statistics: dict, max_length: int, max_punct: int, max_cells: int | None = None
) -> tuple[int, int]:
    """The grid's upper corner: the training maximum of each feature, capped by the operator's limits.

    A feature without statistics gets an empty axis (everything off the grid goes
    to the pipeline), and ``max_cells`` shortens the length axis (and the punct
    axis too, should it alone exceed the limit) so that load time and memory stay
    bounded whatever a card claims.
    """

    def top(name: str, cap: int) -> int:
        observed = (feature_statistics.get(name) or {}).get("max")
        if observed is None or not math.isfinite(float(observed)):
            return 0
        return max(0, min(cap, math.ceil(float(observed))))

    length, punct = top("length", max_length), top("punct", max_punct)
    if max_cells is not None and (length + 1) * (punct + 1) > max_cells:
        punct = min(punct, max(0, max_cells - 1))
        length = max(0, max_cells // (punct + 1) - 1)
    return length, punct


def pipeline_scores(pipeline: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P(spam), is_spam)`` straight from the pipeline: the reference everything else must equal.

    Spam is column 1: :func:`~spamops.serving.artifact.load_artifact` refuses any
    model whose classes are not ``[0, 1]``.
    """
    proba = pipeline.predict_proba(X)
    spam = proba[:, 1]
    return spam, spam > proba[:, 0]


class DecisionTable:
    """Spam probabilities of every integer ``(length, punct)`` in ``[0, L] x [0, P]``."""

    def __init__(self, pipeline: Any, max_length: int, max_punct: int) -> None:
        started = time.perf_counter()
        self.pipeline = pipeline
        self.max_length = int(max_length)
        self.max_punct = int(max_punct)
        lengths = np.arange(self.max_length + 1, dtype=np.float64)
        puncts = np.arange(self.max_punct + 1, dtype=np.float64)
        grid = np.stack(np.meshgrid(lengths, puncts, indexing="ij"), axis=-1).reshape(-1, N_FEATURES)
        spam = np.empty(len(grid))
        labels = np.empty(len(grid), dtype=bool)
        for start in range(0, len(grid), _CHUNK_ROWS):
            chunk = slice(start, start + _CHUNK_ROWS)
            spam[chunk], labels[chunk] = pipeline_scores(pipeline, grid[chunk])
        shape = (self.max_length + 1, self.max_punct + 1)
        self.probability = spam.reshape(shape)
        self.is_spam = labels.reshape(shape)
        # Nested Python lists: indexing them is several times cheaper than numpy scalar indexing,
        # and single-row requests are the common case.
        self._probability_rows: list[list[float]] = self.probability.tolist()
        self._label_rows: list[list[bool]] = self.is_spam.tolist()
        self.build_seconds = time.perf_counter() - started

    @property
    def cells(self) -> int:
        return (self.max_length + 1) * (self.max_punct + 1)

    def _cell(self, value: float, top: int) -> int | None:
        """The grid index of ``value``, or ``None`` when it is off the grid."""
        if type(value) is not int:
            if not float(value).is_integer():
                return None
            value = int(value)
        return value if 0 <= value <= top else None

    def score(self, rows: Sequence[Row] | np.ndarray) -> Scores:
        """Scores of ``rows`` (already validated: finite, non-negative numbers)."""
        if isinstance(rows, np.ndarray):
            return self.score_array(rows)
        n = len(rows)
        probability: list[float] = [0.0] * n
        is_spam: list[bool] = [False] * n
        missed: list[int] = []
        prob_rows, label_rows, top_l, top_p = self._probability_rows, self._label_rows, self.max_length, self.max_punct
        for i, (length, punct) in enumerate(rows):
            li = self._cell(length, top_l)
            pi = self._cell(punct, top_p) if li is not None else None
            if pi is None:
                missed.append(i)
                continue
            probability[i] = prob_rows[li][pi]
            is_spam[i] = label_rows[li][pi]
        if missed:
            X = np.asarray([rows[i] for i in missed], dtype=np.float64).reshape(len(missed), N_FEATURES)
            spam, labels = pipeline_scores(self.pipeline, X)
            for i, p, s in zip(missed, spam.tolist(), labels.tolist(), strict=True):
                probability[i] = p
                is_spam[i] = s
        return Scores(probability, is_spam, len(missed))

    def score_array(self, X: np.ndarray) -> Scores:
        """Vectorised :meth:`score` of an ``(n, 2)`` float array: what batches of feature tensors use."""
        lengths, puncts = X[:, 0], X[:, 1]
        on_grid = (
            (lengths == np.floor(lengths))
            & (puncts == np.floor(puncts))
            & (lengths <= self.max_length)
            & (puncts <= self.max_punct)
        )
        li = np.where(on_grid, lengths, 0).astype(np.intp)
        pi = np.where(on_grid, puncts, 0).astype(np.intp)
        probability = self.probability[li, pi]
        is_spam = self.is_spam[li, pi]
        fallbacks = int(len(X) - np.count_nonzero(on_grid))
        if fallbacks:
            missed = ~on_grid
            probability[missed], is_spam[missed] = pipeline_scores(self.pipeline, X[missed])
        return Scores(probability.tolist(), is_spam.tolist(), fallbacks)
