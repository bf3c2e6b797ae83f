"""Challenger against production on both versions' held-out rows, read from their dataset snapshots."""

from __future__ import annotations

from typing import Literal

import numpy as np

from spamops.records import ChampionRecord, Comparison
from spamops.registry.versions import Registry
from spamops.training import snapshots
from spamops.training.evaluate import evaluate


def held_out_rows(registry: Registry, sha256: str) -> tuple[np.ndarray, np.ndarray]:
    """A version's held-out rows from its snapshot (sha256 verified by the registry)."""
    return snapshots.decode(registry.dataset(sha256), f"{registry.model_name}/datasets/{sha256}.csv")


def compare(
    registry: Registry,
    challenger,
    own: tuple[str, np.ndarray, np.ndarray],
    champion_version: str,
) -> ChampionRecord:
    """Score ``challenger`` and the champion on ``own`` rows (sha256, X, y) and on the champion's rows."""
    champion_model = registry.load_model(champion_version)
    their_sha = registry.card(champion_version).datasets.test.sha256
    sets: list[tuple[Literal["challenger", "champion"], str, np.ndarray, np.ndarray]] = [
        ("challenger", *own),
        ("champion", their_sha, *held_out_rows(registry, their_sha)),
    ]
    return ChampionRecord(
        version=champion_version,
        comparisons=[
            Comparison(
                rows=whose,
                dataset_sha256=sha,
                challenger=evaluate(challenger, X, y),
                champion=evaluate(champion_model, X, y),
            )
            for whose, sha, X, y in sets
        ],
    )
