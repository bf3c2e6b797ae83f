"""One training run end to end: ingest, train, evaluate, gate, version, promote.

Training ends at "promoted": rolling the new version out is the deploy side's step, which the CLI
(``spamops train`` with ``rollout.enabled``) calls after a promotion.

The order is the safety argument: a version is stored (complete, verified) before
the pointer moves, and the pointer moves only when the gate passed.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import TextIO

import joblib

from spamops.config import RunConfig
from spamops.registry.store import open_store
from spamops.registry.versions import Registry, utc_now
from spamops.training import report
from spamops.training.card import build_card
from spamops.training.data import data_warnings, load_dataset
from spamops.training.demo_data import demo_data_path
from spamops.training.evaluate import evaluate, predictions
from spamops.training.gate import GateDecision, decide
from spamops.training.search import scheduler_address
from spamops.training.train import fit, split_dataset


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced; ``promoted`` is ``None`` when promotion was not attempted."""

    version: str
    version_uri: str
    decision: GateDecision
    card: dict
    promoted: dict | None


def run_training(cfg: RunConfig, progress: TextIO | None = sys.stderr, warn: TextIO | None = None) -> RunOutcome:
    """Train on ``cfg.data.sources`` (the demo sample when empty) and store the result.

    ``warn`` gets what was skipped or ignored in the data even when ``progress`` is silenced:
    a quiet run must not hide that the model learnt from fewer rows than the files hold.
    """
    registry = Registry(open_store(cfg.store), cfg.model_name)
    registry.production()  # reach the store before the expensive part: bad credentials fail in seconds
    if cfg.train.backend == "dask":
        scheduler_address(cfg.train)  # a missing scheduler address is a config error: say so before ingest
    sources = cfg.data.sources or [str(demo_data_path())]
    _say(progress, f"ingest: {len(sources)} source(s)")
    dataset = load_dataset(sources, cfg.data.max_bad_row_share)
    for line in data_warnings(dataset):
        _say(warn or sys.stderr, line)
    _say(progress, f"ingest: {len(dataset.y)} rows {dataset.class_counts}, fingerprint {dataset.fingerprint[:19]}…")

    split = split_dataset(dataset, cfg.train)
    result = fit(split, cfg.train, progress)
    metrics = evaluate(result.pipeline, split.X_test, split.y_test)

    champion = None
    production = registry.production()
    if production is not None:
        champion_model = registry.load_model(production["version"])
        champion = {"version": production["version"], **evaluate(champion_model, split.X_test, split.y_test)}
    decision = decide(metrics, cfg.gate, champion)

    created_at = utc_now()
    card = build_card(
        created_at=created_at,
        dataset=dataset,
        result=result,
        metrics=metrics,
        champion=champion,
        decision=decision,
        X_train=split.X_train,
        config=cfg.model_copy(update={"data": cfg.data.model_copy(update={"sources": sources})}),
    )
    model_bytes = _serialize(result.pipeline)
    version = registry.reserve_version(created_at, model_bytes)
    files = _report_files(result.pipeline, split, {**card, "model_name": cfg.model_name, "version": version}, decision)
    stored_card = registry.complete_version(version, model_bytes, files, card)
    _say(progress, f"stored {registry.version_uri(version)}")

    promoted = None
    if decision.passed and cfg.promote:
        promoted = registry.promote(version)
    return RunOutcome(version, registry.version_uri(version), decision, stored_card, promoted)


def _serialize(pipeline) -> bytes:
    buf = io.BytesIO()
    joblib.dump(pipeline, buf)
    return buf.getvalue()


def _report_files(pipeline, split, card: dict, decision: GateDecision) -> dict[str, bytes]:
    y_pred, p_spam = predictions(pipeline, split.X_test)
    files = report.plots(split.y_test, y_pred, p_spam)
    files["report.md"] = report.markdown(card, decision).encode()
    return files


def _say(progress: TextIO | None, message: str) -> None:
    if progress is not None:
        print(message, file=progress, flush=True)
