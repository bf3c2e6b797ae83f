"""Ingestion: combine CSV sources into one validated, fingerprinted dataset.

Two schemas are recognised from the header: numeric ``label,length,punct`` and
text ``label,message`` (features computed by :mod:`spamops.features`).  Bad rows
are counted and reported by source and line; above the configured share the run
stops, because silently dropping much of a dataset changes what the model learns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spamops.errors import BadInputError
from spamops.features import FEATURE_NAMES, LABELS, message_features
from spamops.registry.store import read_uri

SCHEMAS: dict[str, tuple[str, ...]] = {
    "numeric": ("label", "length", "punct"),
    "text": ("label", "message"),
}
_MAX_REASONS_IN_ERROR = 3


@dataclass(frozen=True)
class BadRow:
    """One rejected row, located well enough for a person to fix it."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: line {self.line}: {self.reason}"


@dataclass
class SourceReport:
    """What one source contributed: the data-versioning record of a single file."""

    uri: str
    schema: str
    sha256: str
    rows: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "uri": self.uri,
            "schema": self.schema,
            "sha256": self.sha256,
            "rows": self.rows,
            "bad_rows": len(self.bad_rows),
            "class_counts": self.class_counts,
        }


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (n, 2), labels ``y`` (1 = spam) and the record of where they came from."""

    X: np.ndarray
    y: np.ndarray
    sources: list[SourceReport]
    duplicate_rows: int
    fingerprint: str

    @property
    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(LABELS))
        return {label: int(counts[i]) for i, label in enumerate(LABELS)}

    @property
    def bad_rows(self) -> list[BadRow]:
        return [bad for src in self.sources for bad in src.bad_rows]

    def record(self) -> dict:
        """The JSON data-version record stored in the model card."""
        return {
            "fingerprint": self.fingerprint,
            "rows": int(len(self.y)),
            "class_counts": self.class_counts,
            "duplicate_rows": self.duplicate_rows,
            "bad_rows": len(self.bad_rows),
            "sources": [src.to_json() for src in self.sources],
        }


def load_dataset(sources: Sequence[str], max_bad_row_share: float = 0.01) -> Dataset:
    """Read ``sources`` in order, validate every row and combine them.

    Raises :class:`BadInputError` naming the file (and line) at fault when a
    source is unreadable or malformed, or when too many rows are invalid.
    """
    if not sources:
        raise BadInputError("no data sources given: pass --data FILE or set data.sources in the config")
    features: list[tuple[float, float]] = []
    labels: list[int] = []
    normalized: list[str] = []
    reports: list[SourceReport] = []
    raw_rows: Counter[tuple[str, ...]] = Counter()
    for uri in sources:
        report, rows = _read_source(uri)
        _check_bad_share(report, max_bad_row_share)
        reports.append(report)
        for raw, label, feats in rows:
            raw_rows[raw] += 1
            labels.append(label)
            features.append(feats)
            normalized.append(f"{LABELS[label]},{feats[0]:.17g},{feats[1]:.17g}\n")  # exact, "10" not "10.0"
    if not labels:
        raise BadInputError(f"{', '.join(sources)}: no valid data rows")
    digest = hashlib.sha256("".join(normalized).encode()).hexdigest()
    return Dataset(
        X=np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)),
        y=np.asarray(labels, dtype=np.int64),
        sources=reports,
        duplicate_rows=sum(n - 1 for n in raw_rows.values()),
        fingerprint=f"sha256:{digest}",
    )


def _check_bad_share(report: SourceReport, max_share: float) -> None:
    """Judge each source on its own, so a small garbage file is not diluted by a big good one."""
    bad = report.bad_rows
    total = report.rows + len(bad)
    if not bad or len(bad) <= max_share * total:
        return
    shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:_MAX_REASONS_IN_ERROR])
    more = f" (and {len(bad) - _MAX_REASONS_IN_ERROR} more)" if len(bad) > _MAX_REASONS_IN_ERROR else ""
    raise BadInputError(
        f"{report.uri}: {len(bad)} of {total} rows invalid ({len(bad) / total:.1%} > {max_share:.1%} allowed): "
        f"{shown}{more}; fix the rows or raise data.max_bad_row_share"
    )


def _decode(uri: str, payload: bytes) -> str:
    if b"\x00" in payload:
        raise BadInputError(f"{uri}: not a CSV text file (contains NUL bytes); expected UTF-8 CSV")
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = payload[: exc.start].count(b"\n") + 1
        raise BadInputError(
            f"{uri}: line {line}: undecodable byte 0x{payload[exc.start]:02x}; save the file as UTF-8"
        ) from None


def _detect_schema(uri: str, header: list[str]) -> str:
    names = tuple(h.strip().lower() for h in header)
    for schema, columns in SCHEMAS.items():
        if sorted(names) == sorted(columns):
            return schema
    expected = " or ".join(",".join(cols) for cols in SCHEMAS.values())
    raise BadInputError(f"{uri}: line 1: unexpected columns {','.join(header)!r}; expected {expected}")


def _read_source(uri: str) -> tuple[SourceReport, list[tuple[tuple[str, ...], int, tuple[float, float]]]]:
    payload = read_uri(uri)
    text = _decode(uri, payload)
    if not text.strip():
        raise BadInputError(f"{uri}: file is empty; expected a header row label,length,punct or label,message")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise BadInputError(f"{uri}: line 1: malformed CSV header: {exc}") from None
    schema = _detect_schema(uri, header)
    index = {h.strip().lower(): i for i, h in enumerate(header)}
    report = SourceReport(uri=uri, schema=schema, sha256=hashlib.sha256(payload).hexdigest())
    rows = []
    counts: Counter[str] = Counter()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.bad_rows.append(BadRow(uri, reader.line_num, f"malformed CSV: {exc}"))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines carry no data
        parsed = _parse_row(schema, index, cells)
        if isinstance(parsed, str):
            report.bad_rows.append(BadRow(uri, reader.line_num, parsed))
            continue
        label, feats = parsed
        counts[LABELS[label]] += 1
        rows.append((tuple(cells), label, feats))
    if not rows and not report.bad_rows:
        raise BadInputError(f"{uri}: line 1: header only, no data rows")
    report.rows = len(rows)
    report.class_counts = {label: counts.get(label, 0) for label in LABELS}
    return report, rows


def _parse_row(schema: str, index: dict[str, int], cells: list[str]) -> tuple[int, tuple[float, float]] | str:
    """The parsed row, or the reason it is invalid."""
    if len(cells) != len(index):
        return f"expected {len(index)} fields, found {len(cells)}"
    raw_label = cells[index["label"]].strip()
    label = raw_label.lower()
    if label not in LABELS:
        return f"unknown label {raw_label!r}; expected ham or spam"
    if schema == "text":
        length, punct = message_features(cells[index["message"]])
        return LABELS.index(label), (float(length), float(punct))
    values = []
    for name in ("length", "punct"):
        raw = cells[index[name]].strip()
        try:
            value = float(raw)
        except ValueError:
            return f"{name} {raw!r} is not a number"
        if not math.isfinite(value) or value < 0:
            return f"{name} {raw!r} must be a finite number >= 0"
        values.append(value)
    return LABELS.index(label), (values[0], values[1])
