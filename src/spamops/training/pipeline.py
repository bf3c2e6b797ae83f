"""One training run end to end: ingest, train, evaluate, gate, version, promote.

Training ends at "promoted": rolling the new version out is the deploy side's step, which the CLI
(``spamops train`` with ``rollout.enabled``) calls after a promotion.

The order is the safety argument: a version is stored (complete, verified) before
the pointer moves, and the pointer moves only when the gate passed.  The store is
checked for writability before ingest, so a wrong ``--store`` costs a second, not a
grid search; a run on the same data, code and settings as an existing version
stores nothing new (``force_new`` overrides).
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from typing import TextIO

import joblib

from spamops import __version__
from spamops.config import RunConfig
from spamops.errors import SpamopsError, StoreError
from spamops.records import DatasetsRecord, GateRecord, ModelCard, ProductionPointer, sha256_hex
from spamops.registry.store import open_store
from spamops.registry.versions import Registry, utc_now
from spamops.training import report, snapshots
from spamops.training.card import build_card
from spamops.training.champion import compare
from spamops.training.data import data_warnings, load_dataset
from spamops.training.demo_data import demo_data_path
from spamops.training.evaluate import evaluate, predictions
from spamops.training.gate import decide
from spamops.training.search import scheduler_address
from spamops.training.train import fit, split_dataset


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced; ``promoted`` is ``None`` when promotion was not attempted.

    ``unchanged`` means the run matched an existing version (``version``) and stored nothing.
    """

    version: str
    version_uri: str
    decision: GateRecord
    card: ModelCard
    promoted: ProductionPointer | None
    unchanged: bool = False


def run_training(
    cfg: RunConfig, progress: TextIO | None = sys.stderr, warn: TextIO | None = None, *, force_new: bool = False
) -> RunOutcome:
    """Train on ``cfg.data.sources`` (the demo sample when empty) and store the result.

    ``warn`` gets what was skipped or ignored in the data even when ``progress`` is silenced:
    a quiet run must not hide that the model learnt from fewer rows than the files hold.
    """
    registry = Registry(open_store(cfg.store), cfg.model_name)
    registry.store.check_writable()  # a read-only or impossible store fails now, not after the grid search
    registry.production()  # reach the store before the expensive part: bad credentials fail in seconds
    if cfg.train.backend == "dask":
        scheduler_address(cfg.train)  # a missing scheduler address is a config error: say so before ingest
    sources = cfg.data.sources or [str(demo_data_path())]
    _say(progress, f"ingest: {len(sources)} source(s)")
    dataset = load_dataset(sources, cfg.data.max_bad_row_share)
    for line in data_warnings(dataset):
        _say(warn or sys.stderr, line)
    _say(progress, f"ingest: {len(dataset.y)} rows {dataset.class_counts}, fingerprint {dataset.fingerprint[:19]}…")
    config = cfg.model_copy(update={"data": cfg.data.model_copy(update={"sources": sources})})

    twin = None if force_new else same_run(registry, dataset.fingerprint, config)
    if twin is not None:
        _say(progress, f"unchanged: {twin.version} has the same data fingerprint, code version and settings")
        return RunOutcome(twin.version, twin.storage_uri, twin.gate, twin, None, unchanged=True)

    split = split_dataset(dataset, cfg.train)
    result = fit(split, cfg.train, progress)
    metrics = evaluate(result.pipeline, split.X_test, split.y_test)
    train_csv = snapshots.encode(split.X_train, split.y_train)
    test_csv = snapshots.encode(split.X_test, split.y_test)

    champion = None
    production = registry.production()
    if production is not None:
        own = (sha256_hex(test_csv), split.X_test, split.y_test)
        champion = compare(registry, result.pipeline, own, production.version)
    decision = decide(metrics, cfg.gate, champion.comparisons if champion else ())

    created_at = utc_now()
    # The lease on a fresh id, before anything of this run is stored: `spamops models gc` leaves
    # the version and the snapshots it is about to name alone until end_version below.
    version = registry.reserve_version(created_at)
    try:
        datasets = DatasetsRecord(
            train=registry.put_dataset(train_csv, len(split.y_train)),
            test=registry.put_dataset(test_csv, len(split.y_test)),
        )
        content = build_card(
            created_at=created_at,
            dataset=dataset,
            result=result,
            metrics=metrics,
            champion=champion,
            decision=decision,
            X_train=split.X_train,
            config=config,
            datasets=datasets,
        )
        model_bytes = _serialize(result.pipeline)
        files = _report_files(result.pipeline, split, content, cfg.model_name, version, decision)
        stored_card = registry.complete_version(version, model_bytes, files, content)
        _say(progress, f"stored {registry.version_uri(version)}")

        promoted = None
        if decision.passed and cfg.promote:
            promoted = registry.promote(version)
    except BaseException as exc:  # stopped or failed: remove what this run stored of its version
        if type(exc) is not StoreError:  # an outage would make each removal wait out the deadline; gc does it later
            with contextlib.suppress(SpamopsError):
                registry.end_version(version)
        raise
    with contextlib.suppress(SpamopsError):  # the run succeeded; a lease left behind is gc's
        registry.end_version(version)
    return RunOutcome(version, registry.version_uri(version), decision, stored_card, promoted)


def _training_settings(cfg: RunConfig) -> dict:
    """The settings that shape a version: not where it or its data is stored, nor whether it is promoted.

    The data itself is compared by fingerprint, so the same rows under another path are the same data.
    """
    return cfg.model_dump(
        mode="json", exclude={"store": True, "promote": True, "rollout": True, "data": {"sources": True}}
    )


def same_run(registry: Registry, fingerprint: str, cfg: RunConfig) -> ModelCard | None:
    """The newest complete version with this data fingerprint, code version and settings, if any."""
    wanted = _training_settings(cfg)
    for info in reversed(registry.versions()):
        card = info.card
        if (
            card is not None
            and card.data.fingerprint == fingerprint
            and card.code_version == __version__
            and _training_settings(card.config) == wanted
        ):
            return card
    return None


def _serialize(pipeline) -> bytes:
    buf = io.BytesIO()
    joblib.dump(pipeline, buf)
    return buf.getvalue()


def _report_files(pipeline, split, content, model_name: str, version: str, decision: GateRecord) -> dict[str, bytes]:
    y_pred, p_spam = predictions(pipeline, split.X_test)
    files = report.plots(split.y_test, y_pred, p_spam)
    files["report.md"] = report.markdown(content, model_name, version, decision).encode()
    return files


def _say(progress: TextIO | None, message: str) -> None:
    if progress is not None:
        print(message, file=progress, flush=True)
