"""Load a model directory (what KServe's storage initializer puts in ``/mnt/models``) safely.

A joblib file is code: unpickling it runs whatever it contains.  So the bytes of
``model.joblib`` are hashed and matched against the model card *before*
``joblib.load`` sees them, and a card built on another feature definition is
refused, since its model would silently receive features it was not trained on.
Every refusal is an :class:`ArtifactError` whose message is the one log line an
operator needs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from spamops.features import FEATURE_NAMES, FEATURE_SPEC_VERSION
from spamops.records import CARD_FILE, MODEL_FILE, FeatureStatistics, ModelCard, RecordError, parse_card, sha256_hex


class ArtifactError(Exception):
    """The model directory cannot be trusted or used; ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Artifact:
    """A verified model: the fitted pipeline and the card that vouches for it."""

    pipeline: Any
    card: ModelCard

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def feature_statistics(self) -> dict[str, FeatureStatistics]:
        return self.card.feature_statistics


def read_card(model_dir: Path) -> ModelCard:
    """The model card of ``model_dir``, validated by the same typed record the trainer writes.

    A hand-edited or truncated card must leave the model not ready with a message
    naming the field at fault, not crash the process (or a later request) on a
    ``None`` checksum or a string where a number belongs.
    """
    path = model_dir / CARD_FILE
    if not path.is_file():
        raise ArtifactError("missing_card", f"{path}: no model card; refusing to load a model without one")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError("bad_card", f"{path}: unreadable model card ({exc})") from None
    try:
        return parse_card(data, str(path))
    except RecordError as exc:
        raise ArtifactError("bad_card", str(exc)) from None


def check_feature_spec(card: ModelCard, source: str) -> None:
    """Refuse a model trained on another feature definition than the one this code computes."""
    version, names = card.feature_spec.version, card.feature_spec.names
    if version != FEATURE_SPEC_VERSION or names != list(FEATURE_NAMES):
        raise ArtifactError(
            "feature_spec_mismatch",
            f"{source}: model was trained on feature spec {version} {names}, this predictor computes "
            f"spec {FEATURE_SPEC_VERSION} {list(FEATURE_NAMES)}; refusing to serve it",
        )


def load_artifact(model_dir: str | Path) -> Artifact:
    """Verify then load ``model_dir``; raises :class:`ArtifactError` with the reason."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        what = "is not a directory" if model_dir.exists() else "model directory does not exist"
        raise ArtifactError("missing_dir", f"{model_dir}: {what}")
    card = read_card(model_dir)
    check_feature_spec(card, str(model_dir / CARD_FILE))
    model_path = model_dir / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError("missing_model", f"{model_path}: missing; the model card names a model that is not there")
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ArtifactError("unreadable_model", f"{model_path}: cannot be read ({exc})") from None
    actual = sha256_hex(data)
    expected = {card.sha256, card.files.get(MODEL_FILE, card.sha256)}
    if expected != {actual}:
        raise ArtifactError(
            "checksum_mismatch",
            f"{model_path}: sha256 {actual[:12]}… does not match the model card's {card.sha256[:12]}…; "
            "the artifact was altered or belongs to another version, refusing to unpickle it",
        )
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing: unusable
        raise ArtifactError("unloadable_model", f"{model_path}: checksum matches but loading failed: {exc}") from None
    classes = [int(c) for c in getattr(pipeline, "classes_", [])]
    if not hasattr(pipeline, "predict_proba") or classes != [0, 1]:
        raise ArtifactError(
            "unexpected_model",
            f"{model_path}: expected a classifier with predict_proba over classes [0, 1], got {classes}",
        )
    probe = np.zeros((1, len(FEATURE_NAMES)))
    try:
        pipeline.predict_proba(probe)
    except Exception as exc:  # noqa: BLE001
        raise ArtifactError(
            "unexpected_model", f"{model_path}: the model cannot score a {probe.shape} input: {exc}"
        ) from None
    return Artifact(pipeline=pipeline, card=card)
