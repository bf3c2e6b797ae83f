"""Ground truth for logged predictions: ``id,label`` uploads, checked whole, stored whole.

An upload (a CSV file through ``spamops monitor feedback``, or a CSV or JSON body POSTed to
the monitor's ``/feedback``) is accepted only when every row is good: a known prediction
id (see :func:`spamops.serving.inference_log.prediction_ids`), ``ham`` or ``spam``, no id
twice with different labels.  Otherwise nothing is stored and the error names each bad
row, so a fixed file can be sent again without duplicating half of it.  An accepted
upload is one immutable object ``<YYYY-MM-DD>/<UTC time>-<uuid>.jsonl`` of
:class:`~spamops.records.FeedbackLabel` lines under the feedback URI; a later label for
the same id replaces an earlier one (corrections).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Container
from datetime import UTC, datetime

from pydantic import ValidationError

from spamops.errors import BadInputError
from spamops.features import Label, as_label
from spamops.records import FeedbackLabel, LoggedPrediction, describe
from spamops.registry.store import open_store

_MAX_ERRORS_SHOWN = 10


class FeedbackError(BadInputError):
    """An upload refused as a whole; ``rows`` holds every problem as ``"<where>: line N: ..."``.

    ``reason`` is the short code of an HTTP refusal: ``invalid_json`` for a JSON upload
    that does not parse, else ``invalid_feedback``.
    """

    def __init__(self, source: str, rows: list[str], reason: str = "invalid_feedback") -> None:
        shown = "; ".join(rows[:_MAX_ERRORS_SHOWN])
        more = f" (and {len(rows) - _MAX_ERRORS_SHOWN} more)" if len(rows) > _MAX_ERRORS_SHOWN else ""
        super().__init__(
            f"{source}: feedback refused, nothing stored: {shown}{more}; fix these rows and upload the file again"
        )
        self.rows = rows
        self.reason = reason


def parse_csv(data: bytes, source: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """``(line, id, label)`` rows of an ``id,label`` CSV (header required), and the rows that are not CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedbackError(source, [f"byte {exc.start}: not UTF-8; save the file as UTF-8"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise FeedbackError(source, ["line 1: empty file; expected the header id,label"]) from None
    except csv.Error as exc:
        raise FeedbackError(source, [f"line 1: malformed CSV: {exc}"]) from None
    if header != ["id", "label"]:
        raise FeedbackError(source, [f"line 1: header is {','.join(header)!r}; expected exactly id,label"])
    rows, problems = [], []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: malformed CSV: {exc}")
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != 2:
            problems.append(f"line {reader.line_num}: expected 2 fields (id,label), found {len(cells)}")
            continue
        rows.append((reader.line_num, cells[0].strip(), cells[1].strip()))
    return rows, problems


def parse_json(data: bytes, source: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """``(item, id, label)`` of a JSON array of ``{"id": ..., "label": ...}`` (item numbers from 1)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedbackError(source, [f"not valid JSON: {exc}"], "invalid_json") from None
    if isinstance(doc, dict) and isinstance(doc.get("labels"), list):
        doc = doc["labels"]
    if not isinstance(doc, list):
        raise FeedbackError(source, ['expected a JSON array of {"id": ..., "label": ...} (or {"labels": [...]})'])
    rows, problems = [], []
    for number, item in enumerate(doc, 1):
        if not isinstance(item, dict) or set(item) != {"id", "label"}:
            problems.append(f'item {number}: expected an object with exactly "id" and "label"')
        elif not isinstance(item["id"], str) or not isinstance(item["label"], str):
            problems.append(f"item {number}: id and label must be strings")
        else:
            rows.append((number, item["id"].strip(), item["label"].strip()))
    return rows, problems


def check(
    rows: list[tuple[int, str, str]],
    known: Container[str],
    source: str,
    unit: str = "line",
    problems: list[str] | None = None,
) -> dict[str, Label]:
    """``{id: label}`` when every row is good; otherwise :class:`FeedbackError` naming every bad row
    (``problems`` are those found while parsing, reported with the rest)."""
    labels: dict[str, tuple[int, Label]] = {}
    problems = list(problems or [])
    for number, pid, raw in rows:
        label = as_label(raw.lower())
        if not pid:
            problems.append(f"{unit} {number}: empty id")
            continue
        if label is None:
            problems.append(f"{unit} {number}: id {pid!r}: label {raw!r} is not ham or spam")
            continue
        if pid not in known:
            problems.append(
                f"{unit} {number}: id {pid!r} is not in the inference log (a typo, another log, or a prediction "
                "whose batch is not written yet: the predictor flushes every --inference-log-flush-seconds)"
            )
            continue
        if pid in labels and labels[pid][1] != label:
            problems.append(
                f"{unit} {number}: id {pid!r} labelled {label} here but {labels[pid][1]} on {unit} {labels[pid][0]}"
            )
            continue
        labels[pid] = (number, label)
    if not rows and not problems:
        problems.append(f"{unit} 2: no labels (the file holds only a header)" if unit == "line" else "no labels")
    if problems:
        problems.sort(key=_position)
        raise FeedbackError(source, problems)
    return {pid: label for pid, (_, label) in labels.items()}


def _position(problem: str) -> int:
    """The line or item number a problem starts with, to list them in file order."""
    words = problem.split(" ", 2)
    return int(words[1].rstrip(":")) if len(words) > 1 and words[1].rstrip(":").isdigit() else 0


def store_labels(uri: str, labels: dict[str, Label], now: datetime | None = None) -> str:
    """Write one accepted upload create-only; the URI of the object written."""
    now = now or datetime.now(UTC)
    store = open_store(uri)
    key = f"{now:%Y-%m-%d}/{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.jsonl"
    lines = [
        FeedbackLabel(id=pid, label=label, received_at=now, upload=key).model_dump_json()
        for pid, label in labels.items()
    ]
    store.put(key, ("\n".join(lines) + "\n").encode(), if_absent=True)
    return store.uri(key)


def read_labels(uri: str) -> tuple[dict[str, FeedbackLabel], list[str]]:
    """The latest label of every id under ``uri``, and the problems met (a bad stored line is skipped, named)."""
    store = open_store(uri)
    latest: dict[str, FeedbackLabel] = {}
    problems = []
    for key in store.list(""):
        if not key.endswith(".jsonl"):
            continue
        for number, line in enumerate(store.get(key).data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                label = FeedbackLabel.model_validate_json(line)
            except ValidationError as exc:
                problems.append(f"{store.uri(key)}: line {number}: {describe(exc)}")
                continue
            current = latest.get(label.id)
            if current is None or label.received_at >= current.received_at:
                latest[label.id] = label
    return latest, problems


def accept(data: bytes, content_type: str, source: str, known: Container[str], feedback_uri: str) -> tuple[str, int]:
    """Parse one upload (JSON by content type, else CSV), check it against ``known`` prediction ids and store it.

    ``(object URI, labels stored)``; :class:`FeedbackError` (nothing stored) when any row is bad.
    """
    if content_type.split(";")[0].strip().lower() == "application/json":
        (rows, problems), unit = parse_json(data, source), "item"
    else:
        (rows, problems), unit = parse_csv(data, source), "line"
    labels = check(rows, known, source, unit, problems)
    return store_labels(feedback_uri, labels), len(labels)


def joined(
    predictions: dict[str, LoggedPrediction], labels: dict[str, FeedbackLabel]
) -> list[tuple[LoggedPrediction, FeedbackLabel]]:
    """Every logged prediction that has a label, in prediction order (time, then id): the labelled production data."""
    pairs = [(predictions[pid], label) for pid, label in labels.items() if pid in predictions]
    return sorted(pairs, key=lambda pair: (pair[0].time, pair[0].id))
