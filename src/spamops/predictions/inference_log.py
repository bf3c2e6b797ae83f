"""Reading the inference log back: CloudEvents JSON Lines in the store, as predictions.

The predictor writes each answered request as a request/response event pair sharing
``id`` (spamops.serving.inference_log); a KServe ``logger`` sink that stores the events it
receives in the same structured form reads the same way.  The request payload may be V2
(a ``features`` FP32 ``[N, 2]`` tensor or a ``text`` BYTES ``[N]`` tensor) or V1
(``instances`` of texts, ``[length, punct]`` pairs or ``{"text": ...}`` objects); texts become
features through :func:`spamops.features.message_features`, the one feature definition.

Stored objects are immutable and uniquely named, so :class:`LogReader` reads each once
and keeps its predictions; a line that is not a valid event is counted and reported
with its object and line, never fatal (one bad writer must not blind the monitor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from spamops.features import FEATURE_NAMES, LABELS, Label, message_features
from spamops.records import CE_REQUEST, InferenceEvent, LoggedPrediction, describe
from spamops.registry.store import open_store

_MAX_PROBLEMS = 20


@dataclass
class LogReader:
    """Every prediction in the log under ``uri``, refreshed incrementally (new objects only)."""

    uri: str
    predictions: dict[str, LoggedPrediction] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bad_lines: int = 0
    _seen: set[str] = field(default_factory=set)
    _unpaired: dict[str, tuple[str, InferenceEvent]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = open_store(self.uri)

    def refresh(self) -> LogReader:
        """Read the objects written since the last call; a request waits here for its response."""
        for key in self.store.list(""):
            if key in self._seen or not key.endswith(".jsonl"):
                continue
            self._read(key, self.store.get(key).data)
            self._seen.add(key)
        return self

    def _problem(self, text: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)

    def _read(self, key: str, data: bytes) -> None:
        where = self.store.uri(key)
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                event = InferenceEvent.model_validate_json(line)
            except ValidationError as exc:
                self._problem(f"{where}: line {number}: not an inference CloudEvent: {describe(exc)}")
                continue
            kind = "request" if event.type == CE_REQUEST else "response"
            other = self._unpaired.pop(event.id, None)
            if other is None or other[0] == kind:
                self._unpaired[event.id] = (kind, event)
                continue
            request, response = (event, other[1]) if kind == "request" else (other[1], event)
            try:
                for prediction in pair(request, response):
                    self.predictions[prediction.id] = prediction
            except ValueError as exc:
                self._problem(f"{where}: line {number}: request {event.id}: {exc}")


def pair(request: InferenceEvent, response: InferenceEvent) -> list[LoggedPrediction]:
    """The predictions of one request/response pair; ``ValueError`` says what does not fit."""
    rows = _request_rows(request.data)
    version, labels, probabilities = _response_outputs(response.data)
    if not (len(rows) == len(labels) == len(probabilities)):
        raise ValueError(f"{len(rows)} inputs but {len(labels)} labels and {len(probabilities)} probabilities")
    rid = request.id
    ids = [rid] if len(rows) == 1 else [f"{rid}#{i}" for i in range(len(rows))]
    return [
        LoggedPrediction(
            id=pid,
            request_id=rid,
            index=i,
            time=response.time,
            model_version=version,
            features=dict(zip(FEATURE_NAMES, row, strict=True)),
            spam_probability=float(p),
            predicted=label,
        )
        for i, (pid, row, label, p) in enumerate(zip(ids, rows, labels, probabilities, strict=True))
    ]


def _features(item: Any) -> tuple[float, ...]:
    if isinstance(item, str):
        return tuple(float(v) for v in message_features(item))
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return tuple(float(v) for v in message_features(item["text"]))
    if isinstance(item, dict) and all(isinstance(item.get(n), int | float) for n in FEATURE_NAMES):
        return tuple(float(item[n]) for n in FEATURE_NAMES)
    if isinstance(item, list) and len(item) == len(FEATURE_NAMES) and all(isinstance(v, int | float) for v in item):
        return tuple(float(v) for v in item)
    raise ValueError(f"instance {str(item)[:60]!r} is neither a text nor {list(FEATURE_NAMES)}")


def _request_rows(data: dict) -> list[tuple[float, ...]]:
    if "instances" in data and isinstance(data["instances"], list):
        return [_features(item) for item in data["instances"]]
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ValueError("request data has neither V1 'instances' nor one V2 input")
    tensor = inputs[0]
    values = tensor.get("data")
    if not isinstance(values, list):
        raise ValueError("V2 input has no 'data' list")
    if tensor.get("name") == "text":
        return [_features(v) for v in values]
    flat = [v for row in values for v in row] if values and isinstance(values[0], list) else values
    width = len(FEATURE_NAMES)
    if len(flat) % width or not all(isinstance(v, int | float) for v in flat):
        raise ValueError(f"V2 input {tensor.get('name')!r} is not an [N, {width}] numeric tensor")
    return [tuple(float(v) for v in flat[i : i + width]) for i in range(0, len(flat), width)]


def _response_outputs(data: dict) -> tuple[str, list[Label], list[float]]:
    labels: Any  # JSON, checked below
    probabilities: Any
    if "predictions" in data and isinstance(data["predictions"], list):
        preds = data["predictions"]
        if not all(isinstance(p, dict) for p in preds):
            raise ValueError("V1 predictions are not objects with label, spam_probability and model_version")
        versions = {p.get("model_version") for p in preds}
        labels = [p.get("label") for p in preds]
        probabilities = [p.get("spam_probability") for p in preds]
        version = versions.pop() if len(versions) == 1 else None
    else:
        outputs = {o.get("name"): o.get("data") for o in data.get("outputs", []) if isinstance(o, dict)}
        labels, probabilities = outputs.get("label"), outputs.get("spam_probability")
        version = data.get("model_version")
    if not isinstance(version, str) or not version:
        raise ValueError("response names no model_version")
    if not isinstance(labels, list) or any(label not in LABELS for label in labels):
        raise ValueError(f"response labels must be {' or '.join(LABELS)}")
    if not isinstance(probabilities, list) or not all(isinstance(p, int | float) for p in probabilities):
        raise ValueError("response spam_probability must be numbers")
    return version, labels, probabilities


def read_log(uri: str) -> LogReader:
    """The whole log under ``uri``, read once."""
    return LogReader(uri).refresh()
