"""``spamops trigger data``: have the configured sources changed since the production model was trained?

The production card records each source's URI and sha256.  The sources the config names
now are read and hashed again; a different list, order or content means new data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from spamops.records import ModelCard
from spamops.registry.store import read_uri


def source_changes(sources: Sequence[str], card: ModelCard | None) -> list[str]:
    """What differs between ``sources`` now and the card's record; empty when nothing does."""
    if card is None:
        return ["no production version yet"]
    recorded = [(s.uri, s.sha256) for s in card.data.sources]
    if [uri for uri, _ in recorded] != list(sources):
        return [f"sources changed: {[u for u, _ in recorded]} -> {list(sources)}"]
    changes = []
    for uri, sha in recorded:
        now = hashlib.sha256(read_uri(uri)).hexdigest()
        if now != sha:
            changes.append(f"{uri}: sha256 {str(sha)[:12]}… -> {now[:12]}…")
    return changes
