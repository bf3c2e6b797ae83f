"""The append-only rollout record: every decision about a version's rollout, in the store next to it.

Each entry is written create-only (the registry owns where: ``Registry.append_rollout_entry``),
so a record is never rewritten - the store keeps what the loop decided even if the cluster's
Events expire (after an hour by default).  The entry itself is typed in :mod:`spamops.records`
with the card and the production pointer, and read like them: an entry of an earlier schema
version (those without ``schema_version`` are 1) is migrated, a newer one refused by name.
"""

from __future__ import annotations

from spamops.records import RolloutEntry
from spamops.registry.versions import Registry


class RolloutLog:
    """Appends entries of one rollout to the store (create-only, never overwritten)."""

    def __init__(self, registry: Registry, version: str, rollout_id: str) -> None:
        self.registry = registry
        self.version = version
        self.rollout_id = rollout_id

    def append(self, entry: RolloutEntry) -> str:
        return self.registry.append_rollout_entry(self.version, entry)

    def entries(self) -> list[RolloutEntry]:
        return self.registry.rollout_entries(self.version, self.rollout_id)


def rollouts_of(registry: Registry, version: str) -> list[list[RolloutEntry]]:
    """Every recorded rollout of ``version``, each a list of entries in order."""
    groups: dict[str, list[RolloutEntry]] = {}
    for entry in registry.rollout_entries(version):
        groups.setdefault(entry.rollout_id, []).append(entry)
    return list(groups.values())
