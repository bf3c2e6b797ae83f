"""Dataset snapshots: the exact rows a version was trained and judged on, as bytes the store can address.

A snapshot is a numeric ``label,length,punct`` CSV (itself a valid ``--data`` source)
written with the same exact number formatting as the data fingerprint, so the same
rows always give the same bytes and hence the same sha256: versions trained on the
same data share one snapshot object.  The registry stores and verifies the bytes;
this module only converts between them and arrays.

A snapshot's format version is told by its header (a CSV has no other place for it, and
its bytes are its name): :data:`FORMATS` maps each header ever written to its version, so
a later format adds a header and a reader while every stored snapshot stays readable.
Format 1 is ``label,length,punct``.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from spamops.errors import IntegrityError
from spamops.features import FEATURE_NAMES, LABELS

HEADER = ("label", *FEATURE_NAMES)
FORMAT = 1  # what encode() writes
FORMATS: dict[tuple[str, ...], int] = {
    ("label", "length", "punct"): 1
}  # every header ever written -> its format version


def encode(X: np.ndarray, y: np.ndarray) -> bytes:
    """``X``/``y`` as snapshot CSV bytes (``%.17g``: exact, and ``10`` rather than ``10.0``)."""
    lines = [",".join(HEADER) + "\n"]
    lines.extend(
        f"{LABELS[int(label)]},{','.join(f'{v:.17g}' for v in row)}\n" for row, label in zip(X, y, strict=True)
    )
    return "".join(lines).encode()


def decode(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays from snapshot bytes; anything but the format :func:`encode` writes is an integrity failure."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    if FORMATS.get(tuple(next(reader, ()))) != FORMAT:  # the one format so far: read as written
        raise IntegrityError(f"{source}: not a spamops dataset snapshot (header is not {','.join(HEADER)})")
    features, labels = [], []
    for line, cells in enumerate(reader, start=2):
        try:
            labels.append(LABELS.index(cells[0]))
            features.append([float(v) for v in cells[1:]])
        except (ValueError, IndexError):
            raise IntegrityError(f"{source}: line {line}: malformed snapshot row {cells!r}") from None
    X = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    return X, np.asarray(labels, dtype=np.int64)
