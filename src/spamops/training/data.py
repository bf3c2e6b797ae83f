"""Ingestion: combine CSV sources into one validated, fingerprinted dataset.

Two schemas are recognised from the header: numeric ``label,length,punct`` and
text ``label,message`` (features computed by :mod:`spamops.features`); other columns
are ignored and reported once.  Every row that cannot be used (an undecodable byte,
an unknown label, an empty message, a length that is not a whole number, a row of
empty fields) is a *bad row*, counted and reported by source and line; above the
configured share the run stops, because silently dropping much of a dataset changes
what the model learns.

Sources are read as a stream of lines (local files are never loaded whole), the
features go into compact arrays and the fingerprint is hashed as rows arrive, so
memory grows with the rows kept (16 bytes of features each) and the distinct rows,
not with the file.  :func:`csv_chunks` writes rows back as CSV in bounded chunks,
the same normalised lines the fingerprint hashes (for dataset snapshots).
"""

from __future__ import annotations

import csv
import hashlib
import math
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from spamops.config import DataSource, LabelledLogSource, source_uri
from spamops.errors import BadInputError
from spamops.features import FEATURE_NAMES, LABELS, message_features
from spamops.registry.store import open_uri

SCHEMAS: dict[str, tuple[str, ...]] = {
    "numeric": ("label", "length", "punct"),
    "text": ("label", "message"),
}
LABELLED_LOG_SCHEMA = "labelled_log"  # a LabelledLogSource: the inference log joined with feedback labels
_MAX_REASONS_IN_ERROR = 3
_MAX_BAD_ROWS_KEPT = 100  # examples kept per source; the count is always exact
_HASH_BATCH = 8192  # normalised lines hashed per update call


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
    bad_rows: list[BadRow] = field(default_factory=list)  # the first examples, for people
    bad_count: int = 0  # all of them, for the share rule and the record
    class_counts: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < _MAX_BAD_ROWS_KEPT:
            self.bad_rows.append(BadRow(self.uri, line, reason))

    def to_json(self) -> dict:
        return {
            "uri": self.uri,
            "schema": self.schema,
            "sha256": self.sha256,
            "rows": self.rows,
            "bad_rows": self.bad_count,
            "ignored_columns": self.ignored_columns,
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
            "bad_rows": sum(src.bad_count for src in self.sources),
            "sources": [src.to_json() for src in self.sources],
        }


def load_dataset(sources: Sequence[DataSource], max_bad_row_share: float = 0.01) -> Dataset:
    """Read ``sources`` in order, validate every row and combine them.

    Raises :class:`BadInputError` naming the file (and line) at fault when a
    source is unreadable or malformed, or when too many rows are invalid.
    """
    if not sources:
        raise BadInputError("no data sources given: pass --data FILE or set data.sources in the config")
    features = array("d")
    labels = array("b")
    fingerprint = hashlib.sha256()
    reports: list[SourceReport] = []
    duplicates = 0
    for source in sources:
        if isinstance(source, LabelledLogSource):
            report, source_duplicates = _read_labelled_log(source, features, labels, fingerprint)
        else:
            report, source_duplicates = _read_source(source, features, labels, fingerprint)
        _check_bad_share(report, max_bad_row_share)
        reports.append(report)
        duplicates += source_duplicates
    if not labels:
        raise BadInputError(f"{', '.join(map(source_uri, sources))}: no valid data rows")
    return Dataset(
        X=np.frombuffer(features, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)).copy(),
        y=np.frombuffer(labels, dtype=np.int8).astype(np.int64),
        sources=reports,
        duplicate_rows=duplicates,
        fingerprint=f"sha256:{fingerprint.hexdigest()}",
    )


def data_warnings(dataset: Dataset, per_source: int = 20) -> list[str]:
    """The lines a person must see about a dataset: ignored columns once, then skipped rows."""
    lines = []
    for src in dataset.sources:
        if src.ignored_columns:
            lines.append(f"warning: {src.uri}: ignoring extra column(s) {', '.join(map(repr, src.ignored_columns))}")
        lines += [f"warning: skipped {bad}" for bad in src.bad_rows[:per_source]]
        if src.bad_count > per_source:
            lines.append(f"warning: {src.uri}: {src.bad_count - per_source} more bad rows skipped")
    return lines


def normalized_line(label: int, length: float, punct: float) -> str:
    """One row as the fingerprint hashes it and snapshots store it: exact, ``10`` not ``10.0``."""
    return f"{LABELS[label]},{length:.17g},{punct:.17g}\n"


def csv_chunks(X: np.ndarray, y: np.ndarray, chunk_rows: int = 65_536) -> Iterator[bytes]:
    """``label,length,punct`` CSV of the rows, header first, in chunks of at most ``chunk_rows`` rows.

    For writing (and hashing) a dataset snapshot without holding the whole CSV in memory; the
    lines are :func:`normalized_line`, so the rows of a whole dataset hash to its fingerprint
    (header excluded).
    """
    yield (",".join(SCHEMAS["numeric"]) + "\n").encode()
    cache: dict[tuple[int, float, float], str] = {}
    for start in range(0, len(y), chunk_rows):
        lines = []
        for label, length, punct in zip(
            y[start : start + chunk_rows].tolist(), *X[start : start + chunk_rows].T.tolist(), strict=True
        ):
            key = (label, length, punct)
            line = cache.get(key)
            if line is None:
                line = cache[key] = normalized_line(label, length, punct)
            lines.append(line)
        yield "".join(lines).encode()


def _check_bad_share(report: SourceReport, max_share: float) -> None:
    """Judge each source on its own, so a small garbage file is not diluted by a big good one."""
    bad = report.bad_count
    total = report.rows + bad
    if not bad or bad <= max_share * total:
        return
    shown = "; ".join(f"line {b.line}: {b.reason}" for b in report.bad_rows[:_MAX_REASONS_IN_ERROR])
    more = f" (and {bad - _MAX_REASONS_IN_ERROR} more)" if bad > _MAX_REASONS_IN_ERROR else ""
    raise BadInputError(
        f"{report.uri}: {bad} of {total} rows invalid ({bad / total:.1%} > {max_share:.1%} allowed): "
        f"{shown}{more}; fix the rows or raise data.max_bad_row_share"
    )


@contextmanager
def _open_binary(uri: str) -> Iterator[BinaryIO]:
    """The source as a binary stream: local files are streamed, other URIs come whole from the store."""
    with open_uri(uri) as fh:
        yield fh


class _Lines:
    """Decoded lines of a binary stream, hashing the bytes as they pass and noting undecodable lines.

    An undecodable byte makes its row bad (not the file): the line is decoded with
    ``surrogateescape`` and the byte is queued in ``undecodable`` for the row reader.
    """

    def __init__(self, uri: str, stream: BinaryIO) -> None:
        self.uri = uri
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.undecodable: list[int] = []
        if b"\x00" in stream.read(8192):
            raise BadInputError(f"{uri}: not a CSV text file (contains NUL bytes); expected UTF-8 CSV")
        stream.seek(0)

    def __iter__(self) -> Iterator[str]:
        first = True
        for raw in self.stream:
            self.sha256.update(raw)
            if first:
                first = False
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.undecodable.append(raw[exc.start])
                yield raw.decode("utf-8", errors="surrogateescape")


def _detect_schema(uri: str, header: list[str]) -> tuple[str, dict[str, int], list[str]]:
    """Schema, column index and the extra (ignored) columns of a header."""
    names = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            raise BadInputError(f"{uri}: line 1: column {header[i]!r} appears twice")
        index[name] = i
    for schema, columns in SCHEMAS.items():
        if set(columns) <= set(names):
            ignored = [header[i] for i, name in enumerate(names) if name not in columns]
            return schema, {name: index[name] for name in columns}, ignored
    expected = " or ".join(",".join(cols) for cols in SCHEMAS.values())
    raise BadInputError(f"{uri}: line 1: unexpected columns {','.join(header)!r}; expected {expected}")


def _read_source(uri: str, features: array, labels: array, fingerprint: hashlib._Hash) -> tuple[SourceReport, int]:
    """Append the good rows of ``uri`` to ``features``/``labels``; its report and its duplicate-row count."""
    with _open_binary(uri) as stream:
        lines = _Lines(uri, stream)
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            raise BadInputError(
                f"{uri}: file is empty; expected a header row label,length,punct or label,message"
            ) from None
        except csv.Error as exc:
            raise BadInputError(f"{uri}: line 1: malformed CSV header: {exc}") from None
        if lines.undecodable:
            raise BadInputError(f"{uri}: line 1: undecodable byte 0x{lines.undecodable[0]:02x}; save the file as UTF-8")
        if not any(h.strip() for h in header):
            raise BadInputError(f"{uri}: file is empty; expected a header row label,length,punct or label,message")
        schema, index, ignored = _detect_schema(uri, header)
        report = SourceReport(uri=uri, schema=schema, sha256="", ignored_columns=ignored)
        width = len(header)
        seen: set = set()
        counts = [0, 0]
        normalized: dict[tuple[int, float, float], bytes] = {}
        pending: list[bytes] = []
        rows = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                lines.undecodable.clear()
                report.add_bad(reader.line_num, f"malformed CSV: {exc}")
                continue
            if lines.undecodable:
                report.add_bad(
                    reader.line_num, f"undecodable byte 0x{lines.undecodable[0]:02x}; save the file as UTF-8"
                )
                lines.undecodable.clear()
                continue
            if not cells:
                continue  # a blank line carries no data and no mistake
            parsed = _parse_row(schema, index, width, cells)
            if isinstance(parsed, str):
                report.add_bad(reader.line_num, parsed)
                continue
            label, length, punct = parsed
            rows += 1
            counts[label] += 1
            features.append(length)
            features.append(punct)
            labels.append(label)
            seen.add(tuple(cells) if schema == "numeric" else _digest(cells))
            key = (label, length, punct)
            line = normalized.get(key)
            if line is None:
                line = normalized[key] = normalized_line(label, length, punct).encode()
            pending.append(line)
            if len(pending) >= _HASH_BATCH:
                fingerprint.update(b"".join(pending))
                pending.clear()
        fingerprint.update(b"".join(pending))
    if not rows and not report.bad_count:
        raise BadInputError(f"{uri}: line 1: header only, no data rows")
    report.sha256 = lines.sha256.hexdigest()
    report.rows = rows
    report.class_counts = {label: counts[i] for i, label in enumerate(LABELS)}
    return report, rows - len(seen)


def _digest(cells: list[str]) -> bytes:
    """A short stand-in for a text row in the duplicate count, so long messages are not all kept."""
    return hashlib.blake2b("\x1f".join(cells).encode(errors="surrogateescape"), digest_size=16).digest()


def _parse_row(schema: str, index: dict[str, int], width: int, cells: list[str]) -> tuple[int, float, float] | str:
    """The parsed row ``(label, length, punct)``, or the reason it is invalid."""
    if len(cells) != width:
        if all(not c.strip() for c in cells):
            return "empty row"
        return f"expected {width} fields, found {len(cells)}"
    raw_label = cells[index["label"]].strip()
    label = raw_label.lower()
    if label not in LABELS:
        if all(not c.strip() for c in cells):
            return "empty row"
        return f"unknown label {raw_label!r}; expected ham or spam"
    if schema == "text":
        message = cells[index["message"]]
        if not message.strip():
            return "empty message"
        length, punct = message_features(message)
        return LABELS.index(label), float(length), float(punct)
    values = []
    for name in ("length", "punct"):
        raw = cells[index[name]].strip()
        try:
            value = float(raw)
        except ValueError:
            return f"{name} {raw!r} is not a number"
        if not math.isfinite(value) or value < 0:
            return f"{name} {raw!r} must be a finite number >= 0"
        if not value.is_integer():
            return f"{name} {raw!r} must be a whole number (it counts characters)"
        values.append(value + 0.0)
    return LABELS.index(label), values[0], values[1]


def labelled_log_rows(source: LabelledLogSource) -> tuple[list[tuple[str, str, float, float]], list[str]]:
    """``(id, label, length, punct)`` of every logged prediction with a label, in prediction order; and problems.

    The features are the ones the predictor computed (or, for a logged text, that
    :func:`spamops.features.message_features` computes), in ``FEATURE_NAMES`` order.
    """
    from spamops.predictions.feedback import joined, read_labels
    from spamops.predictions.inference_log import read_log

    log = read_log(source.inference_log)
    labels, problems = read_labels(source.feedback)
    rows: list[tuple[str, str, float, float]] = []
    for prediction, label in joined(log.predictions, labels):
        if source.model_version and prediction.model_version != source.model_version:
            continue
        length, punct = (prediction.features[name] for name in FEATURE_NAMES)
        rows.append((prediction.id, label.label, length, punct))
    return rows, log.problems + problems


def labelled_log_sha256(rows: Sequence[tuple[str, str, float, float]]) -> str:
    """What names this version of a labelled log (the card's ``sha256``; ``spamops trigger data`` compares it)."""
    digest = hashlib.sha256()
    for pid, label, length, punct in rows:
        digest.update(f"{pid},{label},{length:.17g},{punct:.17g}\n".encode())
    return digest.hexdigest()


def source_sha256(source: DataSource) -> str:
    """The sha256 a source has now, as the card records it: the file's bytes, or the labelled rows'."""
    if isinstance(source, LabelledLogSource):
        return labelled_log_sha256(labelled_log_rows(source)[0])
    from spamops.registry.store import read_uri

    return hashlib.sha256(read_uri(source)).hexdigest()


def _read_labelled_log(
    source: LabelledLogSource, features: array, labels: array, fingerprint: hashlib._Hash
) -> tuple[SourceReport, int]:
    """Append the labelled production rows, validated like a numeric CSV's; line N is the N-th labelled row."""
    rows, problems = labelled_log_rows(source)
    report = SourceReport(uri=source.uri, schema=LABELLED_LOG_SCHEMA, sha256=labelled_log_sha256(rows))
    if not rows:
        hint = f" ({problems[0]})" if problems else ""
        raise BadInputError(
            f"{source.uri}: no labelled predictions: upload labels with 'spamops monitor feedback' first{hint}"
        )
    index = {name: i for i, name in enumerate(SCHEMAS["numeric"])}
    counts = [0, 0]
    seen: set = set()
    pending: list[bytes] = []
    for line, (_, label, length, punct) in enumerate(rows, 1):
        parsed = _parse_row("numeric", index, 3, [label, f"{length:.17g}", f"{punct:.17g}"])
        if isinstance(parsed, str):
            report.add_bad(line, parsed)
            continue
        y, x0, x1 = parsed
        counts[y] += 1
        features.append(x0)
        features.append(x1)
        labels.append(y)
        seen.add(parsed)
        pending.append(normalized_line(y, x0, x1).encode())
    fingerprint.update(b"".join(pending))
    report.rows = len(pending)
    report.class_counts = {label: counts[i] for i, label in enumerate(LABELS)}
    return report, report.rows - len(seen)
