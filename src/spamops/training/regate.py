"""Re-run a stored version's gate against today's production, on its own held-out rows.

The held-out rows are rebuilt from the sources and split settings recorded in the
model card; the data fingerprint proves they are the same rows it was judged on.
"""

from __future__ import annotations

from spamops.config import GateConfig, RunConfig
from spamops.errors import BadInputError
from spamops.registry.versions import Registry
from spamops.training.data import load_dataset
from spamops.training.evaluate import evaluate
from spamops.training.gate import GateDecision, decide
from spamops.training.train import split_dataset


def regate(registry: Registry, version: str, gate: GateConfig) -> GateDecision:
    """The gate decision for ``version`` if it were proposed now."""
    card = registry.card(version)
    recorded = RunConfig.model_validate(card["config"])
    dataset = load_dataset(recorded.data.sources, recorded.data.max_bad_row_share)
    if dataset.fingerprint != card["data"]["fingerprint"]:
        raise BadInputError(
            f"{version}: its data sources changed since training (fingerprint {dataset.fingerprint[:19]}… "
            f"!= recorded {card['data']['fingerprint'][:19]}…); the held-out rows cannot be rebuilt"
        )
    split = split_dataset(dataset, recorded.train)
    metrics = evaluate(registry.load_model(version), split.X_test, split.y_test)
    production = registry.production()
    champion = None
    if production is not None and production["version"] != version:
        champion = evaluate(registry.load_model(production["version"]), split.X_test, split.y_test)
    return decide(metrics, gate, champion)
