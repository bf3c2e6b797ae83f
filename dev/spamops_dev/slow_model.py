"""A model version that is slow to score, for tests and drills: a shadow slower than the traffic.

The predictor answers from a decision table computed from the model at load time
(:mod:`spamops.serving.lookup`), so a model is slow to *score* only where that table
does not cover the instance.  The version stored here wraps a real trained pipeline
whose every ``predict_proba`` call sleeps first, and its card declares no feature
statistics, so the predictor's table is the single ``(0, 0)`` cell and every other
instance is scored by the sleeping pipeline itself.  Served as a shadow, it rehearses
what production must survive: the queue fills, work is dropped and counted, and the
primary does not notice.

The product knows nothing of it.  Its pickle names this module, so the process that
loads it must be able to import ``spamops_dev`` (:func:`process_env`).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from spamops.records import CardContent
from spamops.registry.versions import Registry, utc_now

DEV_DIR = Path(__file__).resolve().parents[1]  # the folder holding spamops_dev


class SlowPipeline:
    """``pipeline`` with ``seconds`` of sleep before each scoring call (``predict_proba``, ``predict``)."""

    def __init__(self, pipeline: Any, seconds: float) -> None:
        self.pipeline = pipeline
        self.seconds = float(seconds)

    @property
    def classes_(self) -> np.ndarray:
        return self.pipeline.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        time.sleep(self.seconds)
        return self.pipeline.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        time.sleep(self.seconds)
        return self.pipeline.predict(X)


def store_slow_version(registry: Registry, base_version: str, seconds: float) -> str:
    """A new complete version in ``registry``: ``base_version``'s pipeline, ``seconds`` slower per call.

    Its card is the base card with no feature statistics (so no table covers its
    inputs) and its own checksum; the version is not promoted.
    """
    card = registry.card(base_version)
    buffer = io.BytesIO()
    joblib.dump(SlowPipeline(registry.load_model(base_version), seconds), buffer)
    model_bytes = buffer.getvalue()
    content = CardContent.model_validate(
        {**{name: getattr(card, name) for name in CardContent.model_fields}, "feature_statistics": {}}
    )
    version = registry.reserve_version(utc_now(), model_bytes)
    registry.complete_version(version, model_bytes, {}, content)
    return version


def process_env() -> dict[str, str]:
    """What a predictor process needs to unpickle a :class:`SlowPipeline`: ``spamops_dev`` on its path."""
    path = [str(DEV_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(path)}
