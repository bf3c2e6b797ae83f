"""The append-only rollout record: every decision about a version's rollout, in the store next to it.

``<store>/<model>/<version>/rollouts/<started-at>-<id>/<seq>-<action>.json``,
each entry written create-only, so a record is never rewritten - the store
keeps what the loop decided even if the cluster's Events expire (after an hour
by default).  The entry itself is typed in :mod:`spamops.records` with the card and
the production pointer.
"""

from __future__ import annotations

from spamops.records import RolloutEntry


class RolloutLog:
    """Appends entries of one rollout to the store (create-only, never overwritten)."""

    def __init__(self, registry, version: str, rollout_id: str) -> None:
        self.registry = registry
        self.version = version
        self.rollout_id = rollout_id
        self.prefix = f"{registry.model_name}/{version}/rollouts/{rollout_id}/"

    def append(self, entry: RolloutEntry) -> str:
        key = f"{self.prefix}{entry.seq:04d}-{entry.action}.json"
        self.registry.store.put(key, (entry.model_dump_json(indent=2) + "\n").encode(), if_absent=True)
        return key

    def entries(self) -> list[RolloutEntry]:
        return [
            RolloutEntry.model_validate_json(self.registry.store.get(k).data)
            for k in sorted(self.registry.store.list(self.prefix))
        ]


def rollouts_of(registry, version: str) -> list[list[RolloutEntry]]:
    """Every recorded rollout of ``version``, each a list of entries in order."""
    prefix = f"{registry.model_name}/{version}/rollouts/"
    groups: dict[str, list[RolloutEntry]] = {}
    for key in sorted(registry.store.list(prefix)):
        entry = RolloutEntry.model_validate_json(registry.store.get(key).data)
        groups.setdefault(entry.rollout_id, []).append(entry)
    return list(groups.values())
