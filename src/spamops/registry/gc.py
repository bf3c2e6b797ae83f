"""``spamops models gc``: remove what interrupted runs left in a store, and nothing anyone needs.

Garbage is

* an **incomplete version** (no ``model-card.json``): a run that crashed or was killed while
  writing it; ``models list`` shows it as ``incomplete`` and it can never be promoted;
* a **temporary object** (``.tmp-*``): the local backend's half of a write that never finished,
  on ``file://`` and (copied there from a local store) ``s3://``; and the lease a run could not
  remove from a version it completed.

Never garbage, whatever its age: a complete version (its card is there, valid or not), the
production version and every version in the pointer's lineage or the history, every version a
rollout record names, a version whose writer still holds its lease (a run in progress, see
:data:`~spamops.registry.versions.WRITE_LEASE`), and dataset snapshots (cards name them; gc
never removes one).  Nothing written more recently than ``older_than`` is touched (the age of a
version is that of its newest object: mtime locally, ``LastModified`` on S3).

Deleting re-checks each version first (its lease, then its card), so a version that a run
completed after the listing is kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spamops.records import CARD_FILE, isoformat
from spamops.registry.store import ObjectStore
from spamops.registry.store.base import ObjectInfo
from spamops.registry.versions import (
    DATASETS_DIR,
    HISTORY_DIR,
    LEASE_FILE,
    ROLLOUTS_DIR,
    WRITE_LEASE,
    Registry,
    utc_now,
)

INCOMPLETE = "incomplete version"
TEMPORARY = "temporary object"


@dataclass(frozen=True)
class Garbage:
    """One thing gc removes: an incomplete version (all its objects) or a single temporary object."""

    kind: str
    uri: str
    version: str | None
    keys: tuple[str, ...]
    size: int
    modified: datetime  # of the newest object

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "uri": self.uri,
            "version": self.version,
            "objects": len(self.keys),
            "bytes": self.size,
            "modified": isoformat(self.modified),
        }


@dataclass(frozen=True)
class Kept:
    """An incomplete version gc leaves alone, and why."""

    version: str
    reason: str

    def to_json(self) -> dict:
        return {"version": self.version, "reason": self.reason}


@dataclass
class Collection:
    """What one ``gc`` pass found (and, unless ``dry_run``, removed)."""

    store_uri: str
    model_name: str
    older_than: timedelta
    dry_run: bool
    removed: list[Garbage] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    @property
    def objects(self) -> int:
        return sum(len(g.keys) for g in self.removed)

    @property
    def size(self) -> int:
        return sum(g.size for g in self.removed)

    def to_json(self) -> dict:
        return {
            "store": self.store_uri,
            "model_name": self.model_name,
            "older_than_seconds": self.older_than.total_seconds(),
            "dry_run": self.dry_run,
            "removed": [g.to_json() for g in self.removed],
            "kept": [k.to_json() for k in self.kept],
            "objects": self.objects,
            "bytes": self.size,
        }


def collect_garbage(
    registry: Registry, older_than: timedelta, *, dry_run: bool = False, now: datetime | None = None
) -> Collection:
    """Find the garbage of ``registry``'s model (see the module docstring) and remove it unless ``dry_run``."""
    store, model = registry.store, registry.model_name
    now = now or utc_now()
    cutoff = now - older_than
    result = Collection(store.uri(model), model, older_than, dry_run)

    versions: dict[str, list[ObjectInfo]] = defaultdict(list)
    recorded: set[str] = set()  # versions with rollout records
    for info in store.scan(model + "/"):
        parts = info.key.split("/")
        if len(parts) < 3 or parts[1] in (HISTORY_DIR, DATASETS_DIR):
            continue
        versions[parts[1]].append(info)
        if len(parts) >= 5 and parts[2] == ROLLOUTS_DIR:
            recorded.add(parts[1])

    named: dict[str, str] = {}  # version -> the record that names it (the first one found, in this order)
    pointer = registry.production()
    if pointer is not None:
        named[pointer.version] = "the production pointer"
        for name in pointer.lineage:
            named.setdefault(name, "the pointer's lineage")
    for move in registry.history():
        for moved in (move.version, move.previous_version, *move.lineage):
            if moved:
                named.setdefault(moved, "the production history")
    for version in sorted(recorded):
        for entry in registry.rollout_entries(version):
            for side in (entry.canary_version, entry.stable_version):
                if side:
                    named.setdefault(side, f"rollout record {entry.rollout_id}")

    root_level = [t for t in store.temporaries("") if "/" not in t.key]
    temporaries = sorted(store.temporaries(model + "/") + root_level, key=lambda t: t.key)
    temps: dict[str, list[ObjectInfo]] = defaultdict(list)  # a version's own, removed with it
    for temp in temporaries:
        parts = temp.key.split("/")
        if len(parts) >= 3 and parts[1] not in (HISTORY_DIR, DATASETS_DIR):
            temps[parts[1]].append(temp)

    live: set[str] = set()
    for version, objects in sorted(versions.items()):
        keys = {info.key: info for info in objects}
        lease = keys.get(f"{model}/{version}/{LEASE_FILE}")
        if lease is not None and lease.modified > now - WRITE_LEASE:
            live.add(version)
        if f"{model}/{version}/{CARD_FILE}" in keys:
            if lease is not None and version not in live and lease.modified <= cutoff:
                result.removed.append(_garbage(store, TEMPORARY, version, [lease]))
            continue
        newest = max(objects + temps.get(version, []), key=lambda info: info.modified)
        if lease is not None and version in live:
            result.kept.append(Kept(version, f"being written (its lease is from {isoformat(lease.modified)})"))
        elif version in named:
            result.kept.append(Kept(version, f"named by {named[version]}"))
        elif newest.modified > cutoff:
            result.kept.append(Kept(version, f"written {isoformat(newest.modified)}, within --older-than"))
        else:
            result.removed.append(_garbage(store, INCOMPLETE, version, objects + temps.get(version, [])))

    for temp in temporaries:
        parts = temp.key.split("/")
        if temp.modified > cutoff or (len(parts) >= 3 and parts[1] in live):
            continue
        if any(temp.key in g.keys for g in result.removed):  # already part of an incomplete version
            continue
        result.removed.append(_garbage(store, TEMPORARY, None, [temp]))

    if not dry_run:
        result.removed = [g for g in result.removed if _remove(registry, g, now)]
    return result


def _garbage(store: ObjectStore, kind: str, version: str | None, objects: list[ObjectInfo]) -> Garbage:
    keys = sorted(info.key for info in objects)
    uri = store.uri(keys[0].rsplit("/", 1)[0]) + "/" if kind == INCOMPLETE else store.uri(keys[0])
    return Garbage(
        kind=kind,
        uri=uri,
        version=version,
        keys=tuple(keys),
        size=sum(info.size for info in objects),
        modified=max(info.modified for info in objects),
    )


def _remove(registry: Registry, garbage: Garbage, now: datetime) -> bool:
    """Delete one item; an incomplete version is re-checked first (lease, then card) and kept if it changed."""
    store, model = registry.store, registry.model_name
    if garbage.kind == INCOMPLETE and garbage.version is not None:
        prefix = f"{model}/{garbage.version}/"
        current = {info.key: info for info in store.scan(prefix)}
        lease = current.get(prefix + LEASE_FILE)
        if lease is not None and lease.modified > now - WRITE_LEASE:
            return False  # a writer claimed it since the listing
        if store.exists(prefix + CARD_FILE):
            return False  # completed since the listing
        temps = [t.key for t in store.temporaries(prefix)]
        keys = [k for k in [*current, *temps] if k != prefix + LEASE_FILE]
        for key in keys:
            store.delete(key)
        if lease is not None:
            store.delete(lease.key)  # last: never a half-removed version without its lease
        return True
    for key in garbage.keys:
        store.delete(key)
    return True
