"""Re-run a stored version's gate against today's production, on the rows stored with both versions.

The held-out rows come from the dataset snapshots the cards name by sha256, never
from the original source paths: a relative path, a moved file or an edited source
cannot change what a version is judged on, and ``spamops gate`` works from any
directory.  A snapshot whose bytes no longer match its sha256 stops the gate.
"""

from __future__ import annotations

from spamops.config import GateConfig
from spamops.records import GateRecord
from spamops.registry.versions import Registry
from spamops.training.champion import compare, held_out_rows
from spamops.training.evaluate import evaluate
from spamops.training.gate import decide


def regate(registry: Registry, version: str, gate: GateConfig) -> GateRecord:
    """The gate decision for ``version`` if it were proposed now."""
    card = registry.card(version)
    X_test, y_test = held_out_rows(registry, card.datasets.test.sha256)
    model = registry.load_model(version)
    metrics = evaluate(model, X_test, y_test)
    production = registry.production()
    if production is not None and production.version == version:
        return decide(metrics, gate, itself=True)
    if production is None:
        return decide(metrics, gate)
    champion = compare(registry, model, (card.datasets.test.sha256, X_test, y_test), production.version)
    return decide(metrics, gate, champion.comparisons)
