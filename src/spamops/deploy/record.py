"""The append-only rollout record: every decision about a version's rollout, in the store next to it.

``<store>/<model>/<version>/rollouts/<started-at>-<id>/<seq>-<action>.json``,
each entry written create-only, so a record is never rewritten - the store
keeps what the loop decided even if the cluster's Events expire (after an hour
by default).  Kept here until the registry's typed records (card, pointer)
exist in one module; it then moves there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["started", "advanced", "held", "aborted", "promoted", "switched", "switched-back"]


class RolloutEntry(BaseModel):
    """One decision: what was done, at which weight, on what evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    seq: int = Field(ge=0)
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    inference_service: str
    mode: Literal["serverless", "standard"]
    stable_version: str | None
    canary_version: str
    action: Action
    weight: int = Field(ge=0, le=100)
    verdict: str | None = None
    reason: str = ""
    check: dict | None = None


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
