"""``spamops trigger data``: have the configured sources changed since the production model was trained?

The production card records each source's URI and sha256.  The sources the config names
now are read and hashed again; a different list, order or content means new data.
"""

from __future__ import annotations

from collections.abc import Sequence

from spamops.config import DataSource, source_uri
from spamops.records import ModelCard
from spamops.training.data import source_sha256


def source_changes(sources: Sequence[DataSource], card: ModelCard | None) -> list[str]:
    """What differs between ``sources`` now and the card's record; empty when nothing does.

    A labelled inference log counts as changed when its labelled rows did (new labels).
    """
    if card is None:
        return ["no production version yet"]
    recorded = [(s.uri, s.sha256) for s in card.data.sources]
    names = [source_uri(s) for s in sources]
    if [uri for uri, _ in recorded] != names:
        return [f"sources changed: {[u for u, _ in recorded]} -> {names}"]
    changes = []
    for source, (uri, sha) in zip(sources, recorded, strict=True):
        now = source_sha256(source)
        if now != sha:
            changes.append(f"{uri}: sha256 {str(sha)[:12]}… -> {now[:12]}…")
    return changes
