"""The predictor's OpenAPI document (``/openapi.json``) states what the server really accepts and answers.

Client generators and fuzzers read it.  FastAPI derives it from the routes, and
that gets four things wrong here: our lean V2 ``/infer`` and KServe's V1
routes read the raw body, so no request schema appears; every route lists a
422 that is never sent (we answer 400 with ``{"error", "reason"}``); the 400,
404 and 503 answers are missing; and KServe's repository load and unload
operations are listed although they accept nothing (they answer 405, see
:class:`~spamops.serving.http.ReadOnlyRepository`).  :func:`document` keeps
FastAPI's document and corrects those operations from the table below.

The request schemas are built from the constants :mod:`spamops.serving.inputs`
validates with and from the running server's :class:`ServingSettings`
(``--max_batch_size``, ``--max_body_bytes``), so a schema-valid request is one
the server accepts, up to what JSON Schema cannot say (the descriptions say it:
``data`` holds as many values as ``shape`` names).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from kserve.model_repository import ModelRepository

from spamops.features import FEATURE_NAMES
from spamops.serving.inputs import (
    FEATURE_DATA_DEPTH,
    FEATURE_TRAILING_SHAPE,
    INTEGER_DATATYPES,
    MAX_FEATURE_VALUE,
    NUMERIC_DATATYPES,
    TEXT_DATA_DEPTH,
    TEXT_DATATYPE,
    TEXT_TRAILING_SHAPES,
)
from spamops.serving.lookup import N_FEATURES
from spamops.serving.model import OUTPUT_NAMES
from spamops.serving.settings import ServingSettings

# Every reason a 400 carries (docs/serving.md explains each).
BAD_REQUEST_REASONS = (
    "invalid_json",
    "unsupported_content_type",
    "invalid_body",
    "missing_instances",
    "missing_inputs",
    "empty_batch",
    "batch_too_large",
    "wrong_shape",
    "wrong_datatype",
    "non_string_text",
    "invalid_feature_value",
    "unknown_output",
    "invalid_v2_request",
    "wrong_protocol",
    "body_too_large",
    "bad_content_length",
)

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _tensor_data(values: dict[str, Any], depth: int) -> dict[str, Any]:
    """Tensor data as :func:`~spamops.serving.inputs.parse_v2` reads it (row-major): ``values``, or
    arrays of them, nested up to ``depth`` levels."""
    item = values
    for _ in range(depth - 1):
        item = {"anyOf": [values, {"type": "array", "items": item}]}
    return {"type": "array", "minItems": 1, "items": item}


def _shape(batch: dict[str, Any], trailing: tuple[int, ...]) -> dict[str, Any]:
    """A V2 shape ``[N, *trailing]``."""
    dims = [batch, *({"const": d} for d in trailing)]
    return {"type": "array", "prefixItems": dims, "minItems": len(dims), "maxItems": len(dims)}


def _v2_input(datatypes: list[str], shapes: list[dict], data: dict, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": datatypes},
            "shape": shapes[0] if len(shapes) == 1 else {"anyOf": shapes},
            "parameters": {"type": "object"},
            "data": data,
        },
    }


def request_schemas(settings: ServingSettings) -> dict[str, Any]:
    """``V1Request`` (``:predict`` and ``:explain``) and ``V2InferRequest`` (``/infer``), as validated."""
    feature = {"type": "number", "minimum": 0, "maximum": MAX_FEATURE_VALUE}
    whole = {"type": "integer", "minimum": 0, "maximum": MAX_FEATURE_VALUE}
    pair = f"[{', '.join(FEATURE_NAMES)}]"
    instance = {
        "anyOf": [
            {"type": "string", "description": "an SMS text"},
            {"type": "array", "items": feature, "minItems": N_FEATURES, "maxItems": N_FEATURES, "description": pair},
            {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        ]
    }
    batch = {"type": "integer", "minimum": 1, "maximum": settings.max_batch, "description": "N, the batch size"}
    v2_inputs = [
        _v2_input(
            [TEXT_DATATYPE],
            [_shape(batch, trailing) for trailing in TEXT_TRAILING_SHAPES],
            _tensor_data({"type": "string"}, TEXT_DATA_DEPTH),
            "N texts: data holds exactly N strings",
        ),
        _v2_input(
            sorted(NUMERIC_DATATYPES - INTEGER_DATATYPES),
            [_shape(batch, FEATURE_TRAILING_SHAPE)],
            _tensor_data(feature, FEATURE_DATA_DEPTH),
            f"N feature rows: data holds exactly N x {N_FEATURES} numbers, {pair} per row",
        ),
        _v2_input(
            sorted(INTEGER_DATATYPES),
            [_shape(batch, FEATURE_TRAILING_SHAPE)],
            _tensor_data(whole, FEATURE_DATA_DEPTH),
            f"N feature rows: data holds exactly N x {N_FEATURES} whole numbers, {pair} per row",
        ),
    ]
    return {
        "V1Request": {
            "type": "object",
            "required": ["instances"],
            "properties": {
                "instances": {"type": "array", "items": instance, "minItems": 1, "maxItems": settings.max_batch}
            },
        },
        "V2InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"anyOf": v2_inputs}},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                            "parameters": {"type": "object"},
                        },
                    },
                },
            },
        },
    }


def schemas(settings: ServingSettings) -> dict[str, Any]:
    """The components our operations refer to; limits come from the running server's settings."""
    prediction = {
        "type": "object",
        "required": ["label", "spam_probability", "model_version"],
        "properties": {
            "label": {"type": "string", "enum": ["ham", "spam"]},
            "spam_probability": {"type": "number"},
            "model_version": {"type": "string"},
        },
    }
    tensor_out = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "data": {"type": "array"},
        },
    }
    return {
        **request_schemas(settings),
        "ErrorBody": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
        },
        "BadRequestBody": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {
                "error": {"type": "string", "description": "what is wrong and how to fix it"},
                "reason": {"type": "string", "enum": list(BAD_REQUEST_REASONS)},
            },
        },
        "NotReadyBody": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {
                "error": {"type": "string"},
                "reason": {"type": "string", "description": "the load failure, e.g. checksum_mismatch"},
            },
        },
        "V1PredictResponse": {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {"type": "array", "items": prediction}},
        },
        "V1ExplainResponse": {
            "type": "object",
            "required": ["explanations"],
            "properties": {"explanations": {"type": "array", "items": {"type": "object"}}},
        },
        "V2InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "id": {"type": "string"},
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "outputs": {"type": "array", "items": tensor_out},
            },
        },
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_BAD = _json("BadRequestBody", "bad request: the reason names the problem (see docs/serving.md)")
_NOT_FOUND = _json("ErrorBody", "no such model (or version)")
_NOT_READY = _json("NotReadyBody", "the model is not verified and loaded; the reason says why")

# KServe's repository load and unload: we answer every call with 405 (http.ReadOnlyRepository), so no
# request is valid and a generated client or fuzzer should not be offered them.
UNDOCUMENTED = {(f"/v2/repository/models/{{model_name}}/{action}", "post") for action in ("load", "unload")}

# (path, method) -> (request body schema or None, 200 schema or None, the other answers)
OPERATIONS: dict[tuple[str, str], tuple[str | None, str | None, dict[str, dict]]] = {
    ("/v1/models/{model_name}:predict", "post"): (
        "V1Request",
        "V1PredictResponse",
        {"400": _BAD, "404": _NOT_FOUND, "503": _NOT_READY},
    ),
    ("/v1/models/{model_name}:explain", "post"): (
        "V1Request",
        "V1ExplainResponse",
        {"400": _BAD, "404": _NOT_FOUND, "503": _NOT_READY},
    ),
    ("/v2/models/{model_name}/infer", "post"): (
        "V2InferRequest",
        "V2InferResponse",
        {"400": _BAD, "404": _NOT_FOUND, "503": _NOT_READY},
    ),
    ("/v2/models/{model_name}/versions/{model_version}/infer", "post"): (
        "V2InferRequest",
        "V2InferResponse",
        {"400": _BAD, "404": _NOT_FOUND, "503": _NOT_READY},
    ),
    ("/v2/health/ready", "get"): (None, None, {"503": _NOT_READY}),
    ("/v1/models/{model_name}", "get"): (None, None, {"404": _NOT_FOUND, "503": _NOT_READY}),
    ("/v2/models/{model_name}/ready", "get"): (None, None, {"404": _NOT_FOUND, "503": _NOT_READY}),
    ("/v2/models/{model_name}/versions/{model_version}/ready", "get"): (
        None,
        None,
        {"404": _NOT_FOUND, "503": _NOT_READY},
    ),
    ("/v2/models/{model_name}", "get"): (None, None, {"404": _NOT_FOUND}),
}


def build(app: FastAPI, settings: ServingSettings, registry: ModelRepository | None = None) -> dict[str, Any]:
    """FastAPI's document for ``app``, corrected from :data:`OPERATIONS`.

    With ``registry``, the ``model_name`` and ``model_version`` path parameters
    list the served names and versions: anything else is a documented 404.
    """
    served = list(registry.get_models().values()) if registry is not None else []
    names = [m.name for m in served]
    versions = [v for v in (getattr(m, "version", None) for m in served) if v]
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(schemas(settings))
    paths = doc.setdefault("paths", {})
    for path, method in UNDOCUMENTED:
        paths.get(path, {}).pop(method, None)
        if not paths.get(path, True):
            del paths[path]
    body_limit = (
        f"at most {settings.max_body_bytes} bytes (--max_body_bytes): a larger body is refused with "
        "400 body_too_large before it is read"
    )
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation errors are answered as 400s
            if (path, method) in OPERATIONS:
                # KServe's shadowed route of the same path would add a model_version query parameter
                # that the route answering (ours) does not read
                operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("in") != "query"]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] == "model_name" and names:
                    parameter["schema"] = {"type": "string", "enum": names}
                elif parameter.get("in") == "path" and parameter["name"] == "model_version" and versions:
                    parameter["schema"] = {"type": "string", "enum": versions}
            body, ok, others = OPERATIONS.get((path, method), (None, None, {}))
            if body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "description": body_limit,
                    "x-max-body-bytes": settings.max_body_bytes,
                    "content": {"application/json": {"schema": _ref(body)}},
                }
            if ok is not None:
                responses["200"] = _json(ok, "the answer")
            responses.update(others)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return doc


def document(app: FastAPI, settings: ServingSettings, registry: ModelRepository) -> None:
    """Serve the corrected document on ``/openapi.json`` (built once, on first request, when the model is loaded)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, settings, registry)
        return app.openapi_schema

    app.openapi = openapi  # FastAPI's documented way to customise the document
