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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spamops.features import FEATURE_NAMES, LABELS
from spamops.records import FeatureStatistics

N_FEATURES = len(FEATURE_NAMES)
Row = tuple[float, float]  # (length, punct) as the client or the feature code gave them
_CHUNK_ROWS = 65_536  # bounds the temporary memory of the load-time batch calls
_LABEL_NAMES = np.array(LABELS, dtype=object)


@dataclass(frozen=True)
class Scores:
    """Per-row spam probability and label, plus how many rows needed the pipeline.

    Lists for rows scored one by one, numpy arrays for tensors scored by
    :meth:`DecisionTable.score_array`: converting a batch to Python objects
    only where the response needs them is a measurable share of its cost.
    """

    probability: list[float] | np.ndarray
    is_spam: list[bool] | np.ndarray
    fallbacks: int

    @property
    def spam_count(self) -> int:
        if isinstance(self.is_spam, np.ndarray):
            return int(np.count_nonzero(self.is_spam))
        return sum(self.is_spam)

    def labels(self) -> list[str]:
        """The label names, ``ham``/``spam``, one per row."""
        if isinstance(self.is_spam, np.ndarray):
            return _LABEL_NAMES.take(self.is_spam.view(np.uint8)).tolist()
        return [LABELS[s] for s in self.is_spam]

    def probability_fp32(self) -> list[float]:
        """The probabilities rounded to FP32, the V2 output's datatype."""
        return np.asarray(self.probability, dtype=np.float32).tolist()


def grid_bounds(
    feature_statistics: Mapping[str, FeatureStatistics], max_length: int, max_punct: int, max_cells: int | None = None
) -> tuple[int, int]:
    """The grid's upper corner: the training maximum of each feature, capped by the operator's limits.

    A feature without statistics gets an empty axis (everything off the grid goes
    to the pipeline), and ``max_cells`` shortens the length axis (and the punct
    axis too, should it alone exceed the limit) so that load time and memory stay
    bounded whatever a card claims.
    """

    def top(name: str, cap: int) -> int:
        stats = feature_statistics.get(name)
        observed = stats.max if stats is not None else None
        if observed is None or not math.isfinite(observed):
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
        self._flat_probability = spam
        self._flat_is_spam = labels
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
            if li is None or pi is None:
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
        """Vectorised :meth:`score` of an ``(n, 2)`` float array (validated: finite, non-negative).

        What batches of feature tensors use: one flat index per row and two
        ``take`` calls, the results left as arrays (see :class:`Scores`).
        """
        lengths, puncts = X[:, 0], X[:, 1]
        li = lengths.astype(np.intp)
        pi = puncts.astype(np.intp)
        on_grid = (li == lengths) & (pi == puncts) & (li <= self.max_length) & (pi <= self.max_punct)
        cell = li * (self.max_punct + 1) + pi
        fallbacks = int(len(X) - np.count_nonzero(on_grid))
        if fallbacks:
            cell[~on_grid] = 0
        probability = self._flat_probability.take(cell)
        is_spam = self._flat_is_spam.take(cell)
        if fallbacks:
            missed = ~on_grid
            probability[missed], is_spam[missed] = pipeline_scores(self.pipeline, X[missed])
        return Scores(probability, is_spam, fallbacks)
