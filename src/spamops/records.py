"""The records spamops writes for others to read: the model card, the production pointer, the rollout record,
the inference log and the feedback labels.

They cross every boundary (trainer → store → CLI, predictor, users' own tools), so
they are typed here once, validated on every read, and written by one function.
``docs/model-card.schema.json`` is generated from :class:`ModelCard` (``spamops models
schema``) and a test keeps it current.

Stored records outlive the code that wrote them (docs/model-card.md, "Versions of a
record"): each stored type has a ``schema_version`` (absent = 1), raised when a field
changes meaning, is renamed or becomes required, with a migration in :data:`MIGRATIONS`
from the version before.  A reader migrates an older record, refuses a newer one with
"upgrade spamops", and keeps (without checking) fields it does not know in a version it
knows: a newer writer may add optional fields without a new version.  A card's embedded
run configuration is kept as written and read by :func:`spamops.config.stored_config`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from spamops.config import RunConfig, stored_config
from spamops.errors import BadInputError

# The schema version each stored record type is written with (and read up to).
CARD_SCHEMA: Final = 1
POINTER_SCHEMA: Final = 1
ROLLOUT_SCHEMA: Final = 1
SCHEMA_VERSION = CARD_SCHEMA  # the model card's, as `spamops models schema` describes it
# The files of a stored version that these records describe (the registry writes them, the
# predictor and KServe's storage initializer read them).
MODEL_FILE = "model.joblib"
CARD_FILE = "model-card.json"


def sha256_hex(data: bytes) -> str:
    """The checksum recorded for every file of a version (and for dataset snapshots)."""
    return hashlib.sha256(data).hexdigest()


SHA256_HEX = r"^[0-9a-f]{64}$"


def isoformat(moment: datetime) -> str:
    """UTC with microseconds and a ``Z``: sortable, and the same text in every record."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str, when_used="json")]
Sha256 = Annotated[str, Field(pattern=SHA256_HEX, description="lower-case hex sha256")]


class Record(BaseModel):
    """Strict (no type coercion), immutable, and NaN-preserving (an undefined ROC-AUC is NaN).

    Built in code, a record refuses unknown fields; read from the store (:func:`read_stored`) it
    keeps those a newer writer added, and writes them back unchanged.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, ser_json_inf_nan="constants", populate_by_name=True
    )

    # No return annotation, here and on the card's config serializer: the JSON Schema (serialization
    # mode) describes a serializer by it, and the fields' own schemas are the ones to publish.
    @model_serializer(mode="wrap")
    def _keep_unknown_fields(self, handler: SerializerFunctionWrapHandler):
        out = handler(self)
        extra = self.__pydantic_extra__
        if extra and isinstance(out, dict):
            out.update({k: v for k, v in extra.items() if k not in out})
        return out


class OpenRecord(Record):
    """A part other modules may grow (ingest reports): unknown fields are kept, known ones checked."""

    model_config = ConfigDict(extra="allow")


# -- model card parts ---------------------------------------------------------
class FeatureSpec(Record):
    version: str
    names: list[str]


class SourceRecord(OpenRecord):
    """One data source as read: its bytes' sha256 names the exact file version."""

    uri: str
    source_schema: str = Field(
        alias="schema",
        description="numeric (label,length,punct), text (label,message) or labelled_log (inference log + feedback)",
    )
    sha256: Sha256
    rows: int
    bad_rows: int
    class_counts: dict[str, int]


class DataRecord(OpenRecord):
    """The combined, validated dataset; ``fingerprint`` hashes the normalised rows in order."""

    fingerprint: str
    rows: int
    class_counts: dict[str, int]
    duplicate_rows: int
    bad_rows: int
    sources: list[SourceRecord]


class DatasetRef(Record):
    """A content-addressed snapshot ``<model>/datasets/<sha256>.csv`` in the version's store."""

    sha256: Sha256
    rows: int
    uri: str = Field(description="where it was written (informational; readers locate it by sha256)")


class DatasetsRecord(Record):
    """The exact rows this version was trained and judged on (data versioning)."""

    train: DatasetRef
    test: DatasetRef


class TrainingRecord(OpenRecord):
    scoring: str
    cv_score: float
    candidates: int
    train_rows: int


class Metrics(Record):
    """Held-out metrics; ``baseline_accuracy`` is the always-majority-class score on the same rows."""

    rows: int
    accuracy: float
    balanced_accuracy: float
    spam_precision: float
    spam_recall: float
    spam_f1: float
    roc_auc: float
    confusion_matrix: list[list[int]]
    baseline_accuracy: float


class Comparison(Record):
    """Challenger and champion scored on the same held-out rows (``rows`` says whose)."""

    rows: Literal["challenger", "champion"]
    dataset_sha256: Sha256
    challenger: Metrics
    champion: Metrics


class ChampionRecord(Record):
    """The production version this one was compared with, on both versions' held-out rows."""

    version: str
    comparisons: list[Comparison]


class RuleRecord(Record):
    """One gate rule's outcome; ``threshold`` is what ``measured`` had to reach (none for a rule without a number)."""

    rule: str
    measured: float | None
    threshold: float | None
    passed: bool
    detail: str


class GateRecord(Record):
    """The gate's verdict (spamops.training.gate): passed only if every rule passed; ``reasons`` say why not."""

    passed: bool
    reasons: list[str]
    rules: list[RuleRecord]

    @classmethod
    def of(cls, rules: list[RuleRecord]) -> GateRecord:
        """The verdict of these rules."""
        return cls(passed=all(r.passed for r in rules), reasons=[r.detail for r in rules if not r.passed], rules=rules)


class FeatureStatistics(Record):
    """Training-row summary of one feature: the reference for explanations and drift checks."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    percentiles: list[float]


class FeatureBuckets(Record):
    """Training rows counted in the predictor's histogram buckets (Prometheus ``le`` semantics).

    ``counts[i]`` holds the rows with ``bounds[i-1] < value <= bounds[i]``; the last entry those
    above every bound, so production bucket increases compare with it directly.
    """

    bounds: list[float]
    counts: list[int]


class FeatureReference(Record):
    """The drift monitor's reference (``spamops monitor``): per-feature buckets and the training spam rate."""

    buckets: dict[str, FeatureBuckets]
    spam_rate: float | None


class CardContent(Record):
    """Everything the trainer knows about a version before the registry stores it.

    ``config`` is the run configuration as this build reads it; read from a stored card it keeps
    the mapping it was written with (``config.as_written``), and the card writes that back.
    """

    schema_version: Literal[1] = CARD_SCHEMA
    created_at: Timestamp
    code_version: str
    python: str
    libraries: dict[str, str]
    feature_spec: FeatureSpec
    data: DataRecord
    datasets: DatasetsRecord
    params: dict[str, int | float | str | None]
    training: TrainingRecord
    config: RunConfig
    metrics: Metrics
    champion: ChampionRecord | None
    gate: GateRecord
    feature_statistics: dict[str, FeatureStatistics]
    feature_reference: FeatureReference | None = Field(
        default=None, description="drift reference; absent on versions trained before drift monitoring"
    )

    @field_validator("config", mode="before")
    @classmethod
    def _read_stored_config(cls, value: Any) -> Any:
        """A stored card's ``config`` is read by the config model of its version, and kept as written."""
        if not isinstance(value, dict):
            return value
        try:
            return stored_config(value)
        except ValidationError as exc:  # a setting this build knows, with a value it cannot take
            raise PydanticCustomError("stored_config", "{problem}", {"problem": f"config.{describe(exc)}"}) from None

    @field_serializer("config")
    def _write_config_as_read(self, config: RunConfig, info: FieldSerializationInfo):
        written = config.as_written
        return written if written is not None else config.model_dump(mode=info.mode, by_alias=info.by_alias)


class ModelCard(CardContent):
    """``model-card.json``: what one version is, what it was trained and tested on, and why it was (not) promoted."""

    model_name: str
    version: str
    storage_uri: str = Field(description="the version prefix, as KServe's storageUri")
    sha256: Sha256 = Field(description="sha256 of model.joblib")
    files: dict[str, Sha256] = Field(description="sha256 of every file of the version except the card")


class ProductionPointer(Record):
    """``production.json`` (and each ``history/`` entry): which version is production, and how it got there."""

    schema_version: Literal[1] = POINTER_SCHEMA
    model_name: str
    version: str
    storage_uri: str
    sha256: Sha256
    promoted_at: Timestamp
    previous_version: str | None
    lineage: list[str] = Field(description="earlier productions, newest first (what rollback walks back through)")
    action: Literal["promote", "rollback"]
    forced: bool
    reason: str | None


RolloutAction = Literal[
    "started",
    "advanced",
    "held",
    "paused",
    "aborted",
    "promoted",
    "switched",
    "switched-back",
    "shadow-started",
    "shadow-stopped",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RolloutEntry(Record):
    """One entry of the append-only rollout record: what was done, at which weight, on what evidence.

    Stored create-only as ``<model>/<version>/rollouts/<started-at>-<id>/<seq>-<action>.json``
    (spamops.deploy.record), so the store keeps what the loop decided after the cluster's Events expire.
    Entries written before ``schema_version`` was added to them are version 1.
    """

    schema_version: Literal[1] = ROLLOUT_SCHEMA
    rollout_id: str
    seq: int = Field(ge=0)
    at: str = Field(default_factory=_now)
    inference_service: str
    mode: Literal["serverless", "standard"]
    stable_version: str | None
    canary_version: str
    action: RolloutAction
    weight: int = Field(ge=0, le=100)
    verdict: str | None = None
    reason: str = ""
    check: dict[str, Any] | None = None


# -- inference log and feedback labels -----------------------------------------
CE_REQUEST = "org.kubeflow.serving.inference.request"
CE_RESPONSE = "org.kubeflow.serving.inference.response"
CE_SPECVERSION = "1.0"


class InferenceEvent(OpenRecord):
    """One line of the inference log: a CloudEvent in structured JSON, as KServe's payload logger emits.

    The attributes are CloudEvents 1.0 (``specversion``, ``id``, ``type``, ``source``, ``time``,
    ``datacontenttype``) plus KServe's extensions (``inferenceservicename``, ``namespace``,
    ``component``, ``endpoint``); ``data`` is the inference request or response payload.  A
    request and its response share ``id``, the request id the predictor answered with.  Other
    extensions (KServe's ``metadata``, ``traceparent``) are kept as they come.
    """

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    type: Literal["org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"]
    source: str = Field(min_length=1)
    time: Timestamp
    datacontenttype: str = "application/json"
    inferenceservicename: str | None = None
    namespace: str | None = None
    component: str | None = None
    endpoint: str | None = None
    data: dict[str, Any]


class LoggedPrediction(Record):
    """One instance of a logged request: its request and response events joined by request id.

    ``id`` is what feedback labels name: the request id for a one-instance request,
    ``<request id>#<index>`` (0-based) for each instance of a batch.
    """

    id: str
    request_id: str
    index: int = Field(ge=0)
    time: Timestamp
    model_version: str
    features: dict[str, float] = Field(description="spamops.features.FEATURE_NAMES -> value")
    spam_probability: float
    predicted: Literal["ham", "spam"]


class FeedbackLabel(Record):
    """The true label of one logged prediction, as uploaded (``id,label`` CSV or the monitor's POST)."""

    id: str = Field(min_length=1)
    label: Literal["ham", "spam"]
    received_at: Timestamp
    upload: str = Field(description="the stored upload this label came in (its key under the feedback URI)")


# -- reading and writing ------------------------------------------------------
class RecordError(BadInputError):
    """A stored record is malformed: retrying cannot fix it, so it is bad input (exit 2)."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


_PHRASES = {
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "list_type": "must be an array",
    "missing": "is missing",
    "extra_forbidden": "is not a known field",
    "string_pattern_mismatch": "must be a lower-case hex sha256",
}


def _describe(error: ErrorDetails) -> str:
    if error["type"] == "stored_config":  # already in words, with its path
        return error["msg"]
    loc = [str(p) for p in error["loc"]]
    name = f"'{loc[0]}'" if len(loc) == 1 else ".".join(loc)
    phrase = _PHRASES.get(error["type"], error["msg"][:1].lower() + error["msg"][1:])
    return f"{name} {phrase}"


def describe(exc: ValidationError) -> str:
    """The first problem in words with the field's dotted path, plus how many more there are."""
    errors = exc.errors(include_url=False)
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return _describe(errors[0]) + more


# -- versions of stored records --------------------------------------------------
Migration = Callable[[dict[str, Any]], dict[str, Any]]
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class StoredKind:
    """A stored record type: its model, its name in messages, the version written and the migrations to it.

    ``migrations[n]`` turns a version-``n`` document into a version-``n + 1`` one (``schema_version``
    set by the migration), so a record of any older version reaches ``current`` step by step.
    """

    model: type[Record]
    what: str
    current: int
    migrations: Mapping[int, Migration]


MIGRATIONS: dict[str, StoredKind] = {
    "card": StoredKind(ModelCard, "model card", CARD_SCHEMA, {}),
    "pointer": StoredKind(ProductionPointer, "production pointer", POINTER_SCHEMA, {}),
    "rollout": StoredKind(RolloutEntry, "rollout record", ROLLOUT_SCHEMA, {}),
}


def _schema_version(data: bytes | str) -> tuple[int | None, dict[str, Any] | None]:
    """The document's ``schema_version`` (absent: 1) and the parsed document; ``None`` when pydantic must say why."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    version = doc.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return None, doc
    return version, doc


def read_stored(kind: StoredKind, data: bytes | str, source: str) -> Any:
    """A stored record of any version this build knows, migrated to the current one and validated.

    Unknown fields are kept (a newer writer's optional additions); a ``schema_version`` newer than
    ``kind.current`` is refused with the version this build reads, an older one migrated.
    """
    what = f"{kind.what} (schema {kind.current})"
    version, doc = _schema_version(data)
    if version is not None and doc is not None:
        if version > kind.current:
            problem = (
                f"'schema_version' {version} is newer than this spamops reads ({kind.current}); "
                "upgrade spamops to read it"
            )
            raise RecordError(f"{source}: invalid {what}: {problem}", problem)
        if version < 1:
            problem = f"'schema_version' {version} is not a version (they start at 1)"
            raise RecordError(f"{source}: invalid {what}: {problem}", problem)
        if version < kind.current:
            for step in range(version, kind.current):
                doc = kind.migrations[step](doc)
            data = json.dumps(doc, allow_nan=True)
    return _parse(kind.model, data, source, what)


def _parse(kind: type[R], data: bytes | str, source: str, what: str) -> R:
    try:
        return kind.model_validate_json(data, extra="allow")
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            problem = f"not valid JSON ({exc.errors()[0]['msg']})"
        else:
            problem = describe(exc)
        raise RecordError(f"{source}: invalid {what}: {problem}", problem) from None


def parse_card(data: bytes | str, source: str) -> ModelCard:
    """A stored model card, validated; :class:`RecordError` names the field at fault."""
    card: ModelCard = read_stored(MIGRATIONS["card"], data, source)
    return card


def parse_pointer(data: bytes | str, source: str) -> ProductionPointer:
    """A production pointer or history entry, validated like a card."""
    pointer: ProductionPointer = read_stored(MIGRATIONS["pointer"], data, source)
    return pointer


def parse_rollout_entry(data: bytes | str, source: str) -> RolloutEntry:
    """One stored rollout record entry (spamops.deploy.record), validated like a card."""
    entry: RolloutEntry = read_stored(MIGRATIONS["rollout"], data, source)
    return entry


def dump_record(record: Record) -> bytes:
    """The one serialisation of every record: sorted keys, indented, NaN kept, newline-terminated."""
    data = record.model_dump(mode="json", by_alias=True)
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n").encode()


def card_json_schema() -> dict[str, Any]:
    """JSON Schema of ``model-card.json``, for users' tools (committed as docs/model-card.schema.json)."""
    schema = ModelCard.model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "model-card.schema.json", **schema}


def card_json_schema_text() -> str:
    return json.dumps(card_json_schema(), indent=2, sort_keys=True) + "\n"
