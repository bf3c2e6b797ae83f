"""``--storage-uri``: pull a version from a ``file://`` or ``s3://`` store into the model dir first.

In the cluster KServe's storage initializer does this before the predictor
starts; locally (``make serve STORAGE_URI=...``) the predictor does it itself,
verifying every file's sha256 against the model card as it downloads
(:func:`spamops.registry.versions.pull_files`).

Accepted URIs are a version prefix, as recorded in the card's ``storage_uri``
(``s3://bucket/prefix/spam/spam_model_20250101_120000/``) or any directory
holding a version's files and card wherever it is (``spamops models pull V DIR``
writes one), or a model prefix (``s3://bucket/prefix/spam/``), meaning the
version production points at.
"""

from __future__ import annotations

from pathlib import Path

from spamops.errors import BadInputError
from spamops.records import CARD_FILE
from spamops.registry.store import open_store, split_last
from spamops.registry.versions import Registry, pull_version_directory


def production_of(uri: str) -> tuple[Registry, str]:
    """The registry and production version of the model prefix ``uri``."""
    try:
        parent, model_name = split_last(uri)
    except BadInputError:
        production = None  # the store root itself: no model name, so no production pointer
    else:
        registry = Registry(open_store(parent), model_name)
        production = registry.production()
    if production is None:
        raise BadInputError(
            f"{uri}: neither a complete model version (no {CARD_FILE}) nor a model with a production version; "
            "see 'spamops models list'"
        )
    return registry, production.version


def pull(uri: str, dest: Path) -> str:
    """Download the version ``uri`` names into ``dest`` (checksums verified); returns the version."""
    card = pull_version_directory(open_store(uri), Path(dest))  # a version's own files, at any depth
    if card is not None:
        return card.version
    registry, version = production_of(uri)
    registry.pull(version, Path(dest))
    return version
