"""Versions, the production pointer and its history, on top of any :class:`ObjectStore`.

Layout under the store root::

    <model>/<version>/model.joblib        the fitted numeric-feature Pipeline
    <model>/<version>/report.md, *.png    the human report
    <model>/<version>/model-card.json     written last: a version without it is incomplete
    <model>/<version>/writer.lease        the writing run's claim on the id, first object of a version;
                                          removed when the run ends (see "Writing a version" below)
    <model>/production.json               the pointer, replaced by conditional writes only
    <model>/history/<time>-<version>-<nonce>.json   one create-only object per pointer move
    <model>/datasets/<sha256>.csv         content-addressed data snapshots, shared by versions
    <model>/<version>/rollouts/<started-at>-<id>/<seq>-<action>.json   one create-only object per
                                          rollout decision (spamops rollout; counted by the monitor)

The layout is this module's: callers go through :class:`Registry`, never to its store's keys.

Versions and snapshots are immutable (create-only writes), and every pointer move is a
compare-and-swap, so concurrent promoters never lose an update.

Writing a version: :meth:`Registry.reserve_version` claims a fresh id by creating its lease
(create-only), before the run stores its dataset snapshots; :meth:`Registry.complete_version`
stores the files and the card; :meth:`Registry.end_version` removes the lease when the run ends,
or, when the run failed before the card, the whole incomplete version.  ``spamops models gc``
(:mod:`spamops.registry.gc`) never touches a version whose lease is younger than
:data:`WRITE_LEASE`, so a run in progress is safe from it whatever ``--older-than`` says.
"""

from __future__ import annotations

import io
import os
import socket
import typing
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib

from spamops.errors import (
    BadInputError,
    ConflictError,
    ExitCode,
    IntegrityError,
    NotFoundError,
    SpamopsError,
)
from spamops.interrupts import commit
from spamops.records import (
    CARD_FILE,
    MODEL_FILE,
    CardContent,
    DatasetRef,
    ModelCard,
    ProductionPointer,
    RecordError,
    RolloutAction,
    RolloutEntry,
    dump_record,
    isoformat,
    parse_card,
    parse_pointer,
    parse_rollout_entry,
    sha256_hex,
)
from spamops.registry.store import ObjectStore

__all__ = [
    "Registry",
    "VersionInfo",
    "GateRefusedError",
    "count_decisions",
    "pull_files",
    "pull_version_directory",
    "utc_now",
]

POINTER_FILE = "production.json"
HISTORY_DIR = "history"
DATASETS_DIR = "datasets"
LEASE_FILE = "writer.lease"
ROLLOUTS_DIR = "rollouts"
ROLLOUT_ACTIONS: tuple[str, ...] = typing.get_args(RolloutAction)
WRITE_LEASE = timedelta(minutes=30)  # longer than any run spends writing one version
LINEAGE_DEPTH = 50  # how many earlier productions rollback can walk back through
_CAS_ATTEMPTS = 20


class GateRefusedError(SpamopsError):
    """A version that failed its gate was asked to become production."""

    exit_code = ExitCode.GATE_REFUSED


@dataclass(frozen=True)
class VersionInfo:
    """A stored version as listed; ``card`` is ``None`` while it is incomplete or when it is invalid."""

    version: str
    card: ModelCard | None
    problem: str | None = None  # why a stored card could not be read

    @property
    def complete(self) -> bool:
        return self.card is not None


def utc_now() -> datetime:
    return datetime.now(UTC)


def pull_files(store: ObjectStore, prefix: str, card: ModelCard, dest: Path, *, overwrite: bool = False) -> Path:
    """Copy the files ``card`` names from under ``prefix`` in ``store`` into ``dest``, each verified first.

    ``prefix`` is a version's (``<model>/<version>/``), or empty for a store
    rooted at a version directory (a copy pulled anywhere).  A non-empty
    ``dest`` is refused unless ``overwrite``: mixing two versions' files in one
    model directory would serve a card that vouches for the other one.
    """
    if dest.exists() and not dest.is_dir():
        raise BadInputError(f"{dest}: exists and is not a directory")
    if not overwrite and dest.is_dir() and any(dest.iterdir()):
        raise BadInputError(f"{dest}: directory is not empty; choose an empty one or pass --overwrite")
    blobs = {}
    for name, expected in card.files.items():
        data = store.get(prefix + name).data
        if sha256_hex(data) != expected:
            raise IntegrityError(f"{store.uri(prefix + name)}: checksum mismatch; refusing to pull it")
        blobs[name] = data
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, data in blobs.items():
            (dest / name).write_bytes(data)
        (dest / CARD_FILE).write_bytes(dump_record(card))
    except OSError as exc:
        cause = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        raise BadInputError(f"{dest}: cannot write the version there ({cause}); choose a writable DIR") from None
    return dest


def pull_version_directory(store: ObjectStore, dest: Path) -> ModelCard | None:
    """The version whose files and card sit at ``store``'s root, copied (verified) into ``dest``; ``None`` without a card.

    Such a root is a version prefix (``<model>/<version>/``) opened as a store, or a
    copy ``spamops models pull`` wrote anywhere: the card names every file and its
    sha256, so the version needs no store around it.
    """
    try:
        data = store.get(CARD_FILE).data
    except NotFoundError:
        return None
    card = parse_card(data, store.uri(CARD_FILE))
    pull_files(store, "", card, dest)
    return card


class Registry:
    """The model versions of one model name in one store."""

    def __init__(self, store: ObjectStore, model_name: str) -> None:
        self.store = store
        self.model_name = model_name

    # -- keys -------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join((self.model_name, *parts))

    def version_uri(self, version: str) -> str:
        """The version prefix: what KServe's ``storageUri`` points at."""
        return self.store.uri(self._key(version)) + "/"

    # -- versions ---------------------------------------------------------
    def reserve_version(self, created_at: datetime, model_bytes: bytes | None = None) -> str:
        """Claim a fresh version id by creating its lease (create-only); with ``model_bytes``, store them too.

        Two runs within the same second get ``_2``, ``_3``… suffixes instead of
        overwriting each other.
        """
        base = f"{self.model_name}_model_{created_at.astimezone(UTC):%Y%m%d_%H%M%S}"
        lease = f"writing since {isoformat(utc_now())} on {socket.gethostname()} (pid {os.getpid()})\n".encode()
        for n in range(1, 1000):
            version = base if n == 1 else f"{base}_{n}"
            key = self._key(version, LEASE_FILE)
            try:
                self.store.put(key, lease, if_absent=True)
            except ConflictError:  # another run is writing it
                continue
            # A finished run gave its lease back, and an earlier build claimed ids by model.joblib:
            # the id is free only if nothing else is there.
            if self.store.list(self._key(version) + "/") != [key]:
                self.store.delete(key)
                continue
            if model_bytes is not None:
                self.store.put(self._key(version, MODEL_FILE), model_bytes, if_absent=True)
            return version
        raise ConflictError(f"{self.store.uri(self.model_name)}: cannot find a free version id for {base}")

    def complete_version(
        self, version: str, model_bytes: bytes, files: dict[str, bytes], content: CardContent
    ) -> ModelCard:
        """Store the rest of a reserved version, verify every file, then write the card last.

        The card (which marks the version complete) is written only after each
        file has been read back and matched, so a crash leaves an incomplete
        version that is never listed as complete nor promoted.
        """
        if MODEL_FILE in files or CARD_FILE in files or LEASE_FILE in files:
            raise ValueError(f"files must not include {MODEL_FILE}, {CARD_FILE} or {LEASE_FILE}")
        for name, data in {MODEL_FILE: model_bytes, **files}.items():
            try:
                self.store.put(self._key(version, name), data, if_absent=True)
            except ConflictError:
                if name != MODEL_FILE:  # model.joblib may be there from reserve_version: read back below
                    raise
        checksums = {MODEL_FILE: sha256_hex(model_bytes), **{n: sha256_hex(d) for n, d in files.items()}}
        for name, expected in checksums.items():
            if sha256_hex(self.store.get(self._key(version, name)).data) != expected:
                raise IntegrityError(f"{self.version_uri(version)}{name}: read-back checksum differs from upload")
        card = ModelCard(
            **dict(content),
            model_name=self.model_name,
            version=version,
            storage_uri=self.version_uri(version),
            sha256=checksums[MODEL_FILE],
            files=checksums,
        )
        self.store.put(self._key(version, CARD_FILE), dump_record(card), if_absent=True)
        return card

    def end_version(self, version: str) -> None:
        """The writing run is over: remove its lease, and an incomplete version's objects before it.

        A complete version keeps everything but the lease; an incomplete one (the run failed or
        was stopped before the card) is removed whole, the lease last, so ``spamops models gc``
        never sees it half-removed without its lease.
        """
        prefix = self._key(version) + "/"
        if not self.store.exists(self._key(version, CARD_FILE)):
            lease = self._key(version, LEASE_FILE)
            for key in self.store.list(prefix) + [info.key for info in self.store.temporaries(prefix)]:
                if key != lease:
                    self.store.delete(key)
        self.store.delete(self._key(version, LEASE_FILE))

    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first, complete or not; an unreadable card is listed with its problem."""
        found: dict[str, bool] = {}
        for key in self.store.list(self.model_name + "/"):
            parts = key.split("/")
            if len(parts) == 3 and parts[1] not in (HISTORY_DIR, DATASETS_DIR):
                found[parts[1]] = found.get(parts[1], False) or parts[2] == CARD_FILE
        infos = []
        for version, complete in sorted(found.items()):
            if not complete:
                infos.append(VersionInfo(version, None))
                continue
            try:
                infos.append(VersionInfo(version, self.card(version)))
            except RecordError as exc:
                infos.append(VersionInfo(version, None, exc.problem))
        return infos

    def card(self, version: str) -> ModelCard:
        """The model card of a complete version, validated (:class:`RecordError` names a bad field)."""
        key = self._key(version, CARD_FILE)
        try:
            data = self.store.get(key).data
        except NotFoundError:
            raise NotFoundError(
                f"{self.version_uri(version)}: no complete version {version!r}; see 'spamops models list'"
            ) from None
        return parse_card(data, self.store.uri(key))

    def model_bytes(self, version: str) -> bytes:
        """``model.joblib`` of a version, verified against its card before anyone unpickles it."""
        card = self.card(version)
        data = self.store.get(self._key(version, MODEL_FILE)).data
        if sha256_hex(data) != card.sha256:
            raise IntegrityError(
                f"{self.version_uri(version)}{MODEL_FILE}: sha256 {sha256_hex(data)[:12]}… does not match "
                f"the model card's {card.sha256[:12]}…; the artifact was altered, refusing to load it"
            )
        return data

    def load_model(self, version: str):
        """The fitted pipeline of a version (checksum verified first: a joblib file is code)."""
        return joblib.load(io.BytesIO(self.model_bytes(version)))

    def pull(self, version: str, dest: Path, *, overwrite: bool = False) -> Path:
        """Copy a version's files into ``dest`` after verifying each against the card (see :func:`pull_files`)."""
        return pull_files(self.store, self._key(version) + "/", self.card(version), dest, overwrite=overwrite)

    # -- dataset snapshots -------------------------------------------------
    def _dataset_key(self, sha256: str) -> str:
        return self._key(DATASETS_DIR, f"{sha256}.csv")

    def put_dataset(self, data: bytes, rows: int) -> DatasetRef:
        """Store a snapshot under its own sha256 (create-only); versions with the same rows share it.

        An existing object under that name is re-read and checked: a tampered snapshot
        is reported, not silently reused by the new version.
        """
        digest = sha256_hex(data)
        key = self._dataset_key(digest)
        try:
            self.store.put(key, data, if_absent=True)
        except ConflictError:
            self.dataset(digest)  # already there: prove it still holds these bytes
        return DatasetRef(sha256=digest, rows=rows, uri=self.store.uri(key))

    def dataset(self, sha256: str) -> bytes:
        """A snapshot's bytes, verified against the sha256 that names it."""
        key = self._dataset_key(sha256)
        try:
            data = self.store.get(key).data
        except NotFoundError:
            raise IntegrityError(
                f"{self.store.uri(key)}: dataset snapshot is missing; the version that names it cannot be re-judged"
            ) from None
        actual = sha256_hex(data)
        if actual != sha256:
            raise IntegrityError(
                f"{self.store.uri(key)}: dataset snapshot was altered (its sha256 is {actual[:12]}…, "
                f"its name and the model card say {sha256[:12]}…); refusing to judge a model on it"
            )
        return data

    # -- production pointer ----------------------------------------------
    def production(self) -> ProductionPointer | None:
        """The current pointer record, or ``None`` before the first promotion."""
        key = self._key(POINTER_FILE)
        try:
            data = self.store.get(key).data
        except NotFoundError:
            return None
        return parse_pointer(data, self.store.uri(key))

    def promote(self, version: str, *, force: bool = False, reason: str | None = None) -> ProductionPointer | None:
        """Point production at ``version``; ``None`` when it already is production.

        A version whose gate refused it needs ``force`` and a recorded ``reason`` to become
        production; once it is (a forced promotion, recorded with its reason), promoting it again
        changes nothing and is not refused: the state asked for holds, so a retried Job succeeds.
        """
        card = self.card(version)
        passed = card.gate.passed
        if force and not (reason and reason.strip()):
            raise BadInputError("--force needs --reason TEXT: an override must say why")
        current = self.production()
        if current is not None and current.version == version:
            return None
        if not passed and not force:
            raise GateRefusedError(
                f"{version}: its quality gate refused it ({'; '.join(card.gate.reasons)}); "
                "use --force --reason TEXT to override"
            )
        self.model_bytes(version)  # never point production at a tampered artifact
        return self._move_pointer(card, action="promote", forced=not passed, reason=reason)

    def rollback(self, *, reason: str | None = None) -> ProductionPointer:
        """Move production back to the version it replaced (``reason`` is recorded, e.g. a canary abort)."""
        current = self.production()
        if current is None:
            raise BadInputError(f"{self.store.uri(self.model_name)}: nothing in production to roll back")
        if not current.lineage:
            raise BadInputError(f"{current.version}: is the first production version; nothing to roll back to")
        card = self.card(current.lineage[0])
        self.model_bytes(card.version)
        record = self._move_pointer(card, action="rollback", forced=False, reason=reason)
        assert record is not None
        return record

    def _move_pointer(
        self, card: ModelCard, *, action: typing.Literal["promote", "rollback"], forced: bool, reason: str | None
    ) -> ProductionPointer | None:
        key = self._key(POINTER_FILE)
        for _ in range(_CAS_ATTEMPTS):
            try:
                blob = self.store.get(key)
                current, token = parse_pointer(blob.data, self.store.uri(key)), blob.token
            except NotFoundError:
                current, token = None, None
            if current is not None and current.version == card.version:
                return None
            if action == "rollback":
                if current is None or not current.lineage or current.lineage[0] != card.version:
                    raise ConflictError(f"{key}: production changed during rollback; check 'spamops models list'")
                lineage = current.lineage[1:]
            else:
                lineage = ([current.version, *current.lineage] if current else [])[:LINEAGE_DEPTH]
            record = ProductionPointer(
                model_name=self.model_name,
                version=card.version,
                storage_uri=card.storage_uri,
                sha256=card.sha256,
                promoted_at=utc_now(),
                previous_version=current.version if current else None,
                lineage=lineage,
                action=action,
                forced=forced,
                reason=reason,
            )
            try:
                # The point of no return: a stop signal waits for this write, and once it
                # landed the command finishes (history and output) instead of stopping.
                with commit():
                    if token is None:
                        self.store.put(key, dump_record(record), if_absent=True)
                    else:
                        self.store.put(key, dump_record(record), if_token=token)
            except ConflictError:
                continue
            self._append_history(record)
            return record
        raise ConflictError(f"{self.store.uri(key)}: too many concurrent pointer updates; retry")

    def _append_history(self, record: ProductionPointer) -> None:
        stamp = isoformat(record.promoted_at).replace(":", "").replace("-", "")
        name = f"{stamp}-{record.version}-{uuid.uuid4().hex[:8]}.json"
        self.store.put(self._key(HISTORY_DIR, name), dump_record(record), if_absent=True)

    def history(self) -> list[ProductionPointer]:
        """Every pointer move, oldest first (``spamops models history``)."""
        keys = self.store.list(self._key(HISTORY_DIR) + "/")
        return [parse_pointer(self.store.get(k).data, self.store.uri(k)) for k in keys]

    # -- rollout records --------------------------------------------------
    def has_version(self, version: str) -> bool:
        """Whether ``version`` is complete (its card, written last, is there)."""
        return self.store.exists(self._key(version, CARD_FILE))

    def append_rollout_entry(self, version: str, entry: RolloutEntry) -> str:
        """Store one decision of a rollout of ``version``, create-only (never rewritten); returns its key."""
        key = self._key(version, ROLLOUTS_DIR, entry.rollout_id, f"{entry.seq:04d}-{entry.action}.json")
        self.store.put(key, (entry.model_dump_json(indent=2) + "\n").encode(), if_absent=True)
        return key

    def rollout_entries(self, version: str, rollout_id: str | None = None) -> list[RolloutEntry]:
        """The recorded decisions of ``version``'s rollout ``rollout_id`` (default: of all its rollouts), in order."""
        prefix = self._key(version, ROLLOUTS_DIR, *((rollout_id,) if rollout_id else ())) + "/"
        return [parse_rollout_entry(self.store.get(k).data, self.store.uri(k)) for k in sorted(self.store.list(prefix))]

    def rollout_decisions(self) -> tuple[set[str], Counter]:
        """(versions, Counter of (version, action)) of this model, from one listing of its keys."""
        return count_decisions(self.store.list(self.model_name + "/"), self.model_name)


def count_decisions(keys: Iterable[str], model_name: str) -> tuple[set[str], Counter]:
    """(versions, Counter of (version, action)) from the store keys under ``<model_name>/``.

    A rollout entry is ``<model>/<version>/rollouts/<rollout>/<seq>-<action>.json``; a version
    is any ``<model>/<version>/model-card.json``.  Other keys are not looked at.
    """
    versions: set[str] = set()
    decisions: Counter = Counter()
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == model_name and parts[2] == CARD_FILE:
            versions.add(parts[1])
        elif len(parts) == 5 and parts[0] == model_name and parts[2] == ROLLOUTS_DIR and parts[4].endswith(".json"):
            seq, _, action = parts[4].removesuffix(".json").partition("-")
            if seq.isdigit() and action in ROLLOUT_ACTIONS:
                decisions[(parts[1], action)] += 1
    return versions, decisions
