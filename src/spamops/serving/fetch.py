"""``--storage-uri``: pull a version from a ``file://`` or ``s3://`` store into the model dir first.

In the cluster KServe's storage initializer does this before the predictor
starts; locally (``make serve STORAGE_URI=...``) the predictor does it itself,
through :class:`spamops.registry.versions.Registry`, which verifies every file's sha256
against the model card as it downloads.

Accepted URIs are a version prefix, as recorded in the card's ``storage_uri``
(``s3://bucket/prefix/spam/spam_model_20250101_120000/``), or a model prefix
(``s3://bucket/prefix/spam/``), meaning the version production points at.
"""

from __future__ import annotations

from pathlib import Path

from spamops.errors import BadInputError
from spamops.records import CARD_FILE
from spamops.registry.store import open_store, split_last
from spamops.registry.versions import Registry


def resolve(uri: str) -> tuple[Registry, str]:
    """The registry and version named by ``uri`` (a version prefix, or a model prefix meaning production)."""
    parent, last = split_last(uri)
    as_model = Registry(open_store(parent), last)
    production = as_model.production()
    if production is not None:
        return as_model, production.version
    root, model_name = split_last(parent)
    as_version = Registry(open_store(root), model_name)
    if not as_version.has_version(last):
        raise BadInputError(
            f"{uri}: neither a complete model version (no {CARD_FILE}) nor a model with a production version; "
            "see 'spamops models list'"
        )
    return as_version, last


def pull(uri: str, dest: Path) -> str:
    """Download the version ``uri`` names into ``dest`` (checksums verified); returns the version."""
    registry, version = resolve(uri)
    registry.pull(version, Path(dest))
    return version
