"""Turn V1 and V2 request bodies into ``(length, punct)`` rows, or a 400 that names the problem.

Texts go through :func:`spamops.features.message_features`, the very function
training used, so serving can never compute a feature differently.  Every
rejection is a :class:`BadRequest` carrying a short ``reason`` (the label of
``spamops_invalid_requests_total``) and a message that tells the client what to
fix; nothing a client sends can reach the model as a 500.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import orjson
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from spamops.features import message_features
from spamops.serving.lookup import N_FEATURES, Row
from spamops.serving.settings import SMALL_BATCH

# Datatypes of the Open Inference Protocol accepted for the [N, N_FEATURES] feature input.
NUMERIC_DATATYPES = frozenset(
    {"FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
INTEGER_DATATYPES = frozenset(d for d in NUMERIC_DATATYPES if "INT" in d)
TEXT_DATATYPE = "BYTES"  # the Open Inference Protocol's datatype of the text input
# A V2 input's shape is [N, *trailing]: texts [N] or [N, 1], features [N, N_FEATURES].
TEXT_TRAILING_SHAPES = ((), (1,))
FEATURE_TRAILING_SHAPE = (N_FEATURES,)
# How deeply a V2 input's (row-major) data may nest: each level is an array of values or of arrays.
TEXT_DATA_DEPTH = 2
FEATURE_DATA_DEPTH = 3

MAX_FEATURE_VALUE = 2**53  # beyond this a count is not exactly representable as the model's float64
_NUMBER_TYPES = frozenset({int, float})
_SEQUENCE_TYPES = frozenset({list, tuple})
V1_EXAMPLE = '{"instances": ["free entry! call now", [155, 6], {"text": "see you at 8"}]}'
V2_EXAMPLE = '{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["free entry! call now"]}]}'


class BadRequest(InvalidInput):
    """A client error: HTTP 400 with ``{"error": message, "reason": reason}``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_batch_size(n: int, max_batch: int, what: str) -> None:
    """Refuse an empty batch (nothing to score is a client bug) and one over ``max_batch`` (bounds latency)."""
    if n == 0:
        raise BadRequest("empty_batch", f"{what} is empty; send at least one instance")
    if n > max_batch:
        raise BadRequest("batch_too_large", f"{what} has {n} instances; the maximum per request is {max_batch}")


def feature_value(value: Any, where: str, *, integral: bool = False) -> float:
    """One validated feature value: a finite, non-negative number (JSON booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("wrong_datatype", f"{where}: expected a number, got {_type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest("invalid_feature_value", f"{where}: {value} is not a finite number")
    if value < 0:
        raise BadRequest("invalid_feature_value", f"{where}: {value} is negative; lengths and counts are >= 0")
    if value > MAX_FEATURE_VALUE:
        raise BadRequest("invalid_feature_value", f"{where}: {value} is too large (at most {MAX_FEATURE_VALUE})")
    if integral and isinstance(value, float) and not value.is_integer():
        raise BadRequest("wrong_datatype", f"{where}: {value} is not an integer, as the input's datatype requires")
    return value


def numeric_matrix(values: list[Any], integral: bool) -> np.ndarray | None:
    """``values`` as an ``(n, 2)`` array when every one is valid, else ``None``.

    The vectorised check of a whole tensor: a 100-row batch costs a few
    microseconds here instead of 200 Python-level checks.
    """
    if not set(map(type, values)) <= _NUMBER_TYPES:  # exact types: bool and str are refused; map/set run in C
        return None
    try:
        X = np.asarray(values, dtype=np.float64).reshape(-1, N_FEATURES)
    except (OverflowError, ValueError):
        return None
    if (
        not np.isfinite(X).all()
        or (X < 0).any()
        or (X > MAX_FEATURE_VALUE).any()
        or (integral and (X != np.floor(X)).any())
    ):
        return None
    return X


def feature_pair(pair: Any, where: str) -> Row:
    """A client's ``[length, punct]`` instance, each value checked by :func:`feature_value`."""
    if len(pair) != N_FEATURES:
        raise BadRequest(
            "wrong_shape", f"{where}: a feature instance is [length, punct], got an array of {len(pair)} values"
        )
    return feature_value(pair[0], f"{where}[0] (length)"), feature_value(pair[1], f"{where}[1] (punct)")


def text_row(text: Any, where: str) -> Row:
    """The features of a text instance, computed by training's own :func:`message_features`."""
    if not isinstance(text, str):
        raise BadRequest("non_string_text", f"{where}: text must be a string, got {_type_name(text)}")
    return message_features(text)


def v1_instance(instance: Any, i: int) -> Row:
    """One V1 instance: a text, ``{"text": ...}``, or ``[length, punct]``."""
    if isinstance(instance, str):
        return message_features(instance)
    if isinstance(instance, list):
        return feature_pair(instance, f"instances[{i}]")
    if isinstance(instance, dict):
        if "text" not in instance:
            raise BadRequest(
                "wrong_shape", f"instances[{i}]: an object instance needs a 'text' field, got keys {sorted(instance)}"
            )
        return text_row(instance["text"], f"instances[{i}].text")
    raise BadRequest(
        "wrong_datatype",
        f'instances[{i}]: expected a text, {{"text": ...}} or [length, punct], got {_type_name(instance)}',
    )


def parse_v1(body: Any, headers: dict[str, str] | None, max_batch: int) -> list[Row]:
    """Rows of a V1 ``:predict``/``:explain`` body (already JSON-decoded by KServe when it was JSON)."""
    if isinstance(body, bytes | bytearray | str):
        content_type = (headers or {}).get("content-type", "none")
        raise BadRequest(
            "unsupported_content_type",
            f"body sent as Content-Type {content_type!r} is not read as JSON; "
            f"send Content-Type: application/json with a body like {V1_EXAMPLE}",
        )
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", f"body must be a JSON object like {V1_EXAMPLE}, got {_type_name(body)}")
    if "instances" not in body:
        hint = " ('inputs' belongs to the V2 endpoint /v2/models/<name>/infer)" if "inputs" in body else ""
        raise BadRequest("missing_instances", f"body has no 'instances' field{hint}; expected {V1_EXAMPLE}")
    instances = body["instances"]
    if not isinstance(instances, list):
        raise BadRequest("wrong_datatype", f"'instances' must be an array, got {_type_name(instances)}")
    check_batch_size(len(instances), max_batch, "'instances'")
    return [v1_instance(instance, i) for i, instance in enumerate(instances)]


def _flatten(data: Any, depth: int) -> list[Any]:
    """``data`` as a flat list: V2 JSON allows flat or nested (row-major) tensor data."""
    if not isinstance(data, list | tuple):
        data = data.tolist() if hasattr(data, "tolist") else [data]
    flat = data
    for _ in range(depth - 1):  # one level per pass: a 100-row tensor is one cheap pass
        types = set(map(type, flat))
        if not types & _SEQUENCE_TYPES:
            break
        if types <= _SEQUENCE_TYPES:
            flat = list(chain.from_iterable(flat))
            continue
        level: list[Any] = []
        for item in flat:
            if type(item) in _SEQUENCE_TYPES:
                level.extend(item)
            else:
                level.append(item)
        flat = level
    return list(flat)


def _input_values(tensor: Any) -> list[Any]:
    """The tensor's values: JSON ``data``, or (gRPC, binary extension) raw bytes KServe decodes for us."""
    data = tensor.data
    if isinstance(data, list | tuple) and data:
        return list(data)
    try:  # raw contents leave ``data`` empty or None; as_numpy reads them
        return tensor.as_numpy().tolist()
    except Exception as exc:  # noqa: BLE001 - malformed tensor contents are the client's error
        if isinstance(data, list | tuple):
            return list(data)
        raise BadRequest("wrong_shape", f"input {tensor.name!r}: cannot decode tensor data: {exc}") from None


def _shape(tensor: Any) -> list[int]:
    shape = list(tensor.shape or [])
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
        raise BadRequest("wrong_shape", f"input {tensor.name!r}: shape {shape} must be non-negative integers")
    return shape


def parse_v2(request: InferRequest, max_batch: int) -> list[Row] | np.ndarray:
    """Rows of an Open Inference Protocol request: BYTES ``[N]`` texts or numeric ``[N, 2]`` features."""
    inputs: Sequence[Any] = request.inputs or []
    if not inputs:
        raise BadRequest("missing_inputs", "request has no inputs; send one BYTES [N] text input or one FP32 [N,2]")
    if len(inputs) != 1:
        names = [t.name for t in inputs]
        raise BadRequest(
            "wrong_shape", f"expected exactly one input (BYTES [N] texts or FP32/INT [N,2] features), got {names}"
        )
    tensor = inputs[0]
    datatype = (tensor.datatype or "").upper()
    shape = _shape(tensor)
    if datatype == TEXT_DATATYPE:
        return v2_text_rows(tensor, shape, max_batch)
    if datatype in NUMERIC_DATATYPES:
        return v2_feature_rows(tensor, shape, datatype, max_batch)
    raise BadRequest(
        "wrong_datatype",
        f"input {tensor.name!r}: datatype {datatype or 'none'} is not accepted; "
        "send BYTES [N] texts or FP32/INT [N,2] features",
    )


def v2_text_rows(tensor: Any, shape: list[int], max_batch: int) -> list[Row]:
    """A BYTES ``[N]`` (or ``[N, 1]``) tensor of texts, each through training's feature code."""
    name = tensor.name
    if not shape or tuple(shape[1:]) not in TEXT_TRAILING_SHAPES:
        raise BadRequest("wrong_shape", f"input {name!r}: BYTES texts need shape [N] or [N,1], got {shape}")
    n = shape[0]
    check_batch_size(n, max_batch, f"input {name!r}")
    values = _flatten(_input_values(tensor), TEXT_DATA_DEPTH)
    if len(values) != n:
        raise BadRequest("wrong_shape", f"input {name!r}: shape {shape} says {n} texts but data holds {len(values)}")
    rows = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("non_string_text", f"input {name!r}[{i}]: text is not valid UTF-8") from None
        rows.append(text_row(value, f"input {name!r}[{i}]"))
    return rows


def v2_feature_rows(tensor: Any, shape: list[int], datatype: str, max_batch: int) -> list[Row] | np.ndarray:
    """A numeric ``[N, 2]`` tensor of ``(length, punct)`` pairs: one vectorised check for a batch, else per value."""
    name = tensor.name
    if not shape or tuple(shape[1:]) != FEATURE_TRAILING_SHAPE:
        raise BadRequest("wrong_shape", f"input {name!r}: {datatype} features need shape [N,2], got {shape}")
    n = shape[0]
    check_batch_size(n, max_batch, f"input {name!r}")
    values = _flatten(_input_values(tensor), FEATURE_DATA_DEPTH)
    if len(values) != N_FEATURES * n:
        raise BadRequest(
            "wrong_shape",
            f"input {name!r}: shape {shape} needs {N_FEATURES * n} values but data holds {len(values)}",
        )
    integral = datatype in INTEGER_DATATYPES
    if n > SMALL_BATCH:
        fast = numeric_matrix(values, integral)
        if fast is not None:
            return fast
    # Something is wrong: the per-value pass finds the first bad value and names it.
    checked = [feature_value(v, f"input {name!r} value {i}", integral=integral) for i, v in enumerate(values)]
    return list(zip(checked[0::2], checked[1::2], strict=True))


def _require(condition: bool, reason: str, message: str) -> None:
    if not condition:
        raise BadRequest(reason, message)


def v2_request_from_json(body: bytes, model_name: str) -> InferRequest:
    """An :class:`InferRequest` from a V2 JSON body, with the schema checks FastAPI's model would do.

    Our ``/infer`` route decodes the body itself (see :mod:`spamops.serving.http`);
    a malformed request still gets a 400 naming the field.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("invalid_json", f"body is not valid JSON: {exc}") from None
    _require(isinstance(doc, dict), "invalid_body", f"body must be a JSON object like {V2_EXAMPLE}")
    _require("inputs" in doc, "missing_inputs", f"body has no 'inputs' field; expected {V2_EXAMPLE}")
    raw_inputs = doc["inputs"]
    _require(isinstance(raw_inputs, list), "wrong_datatype", f"'inputs' must be an array, got {_type_name(raw_inputs)}")
    infer_inputs = []
    for i, item in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        _require(isinstance(item, dict), "invalid_v2_request", f"{where} must be an object, got {_type_name(item)}")
        for key, kinds, label in (
            ("name", str, "a string"),
            ("datatype", str, "a string"),
            ("shape", list, "an array"),
        ):
            _require(key in item, "invalid_v2_request", f"{where} has no '{key}' field")
            _require(isinstance(item[key], kinds), "invalid_v2_request", f"{where}.{key} must be {label}")
        _require("data" in item, "invalid_v2_request", f"{where} has no 'data' field")
        parameters = item.get("parameters")
        _require(
            parameters is None or isinstance(parameters, dict),
            "invalid_v2_request",
            f"{where}.parameters must be an object",
        )
        infer_inputs.append(
            InferInput(item["name"], item["shape"], item["datatype"], item["data"], parameters=parameters or {})
        )
    request_id = doc.get("id")
    _require(request_id is None or isinstance(request_id, str), "invalid_v2_request", "'id' must be a string")
    parameters = doc.get("parameters")
    _require(parameters is None or isinstance(parameters, dict), "invalid_v2_request", "'parameters' must be an object")
    outputs = doc.get("outputs")
    requested = None
    if outputs is not None:
        _require(isinstance(outputs, list), "invalid_v2_request", "'outputs' must be an array")
        requested = []
        for j, out in enumerate(outputs):
            _require(
                isinstance(out, dict) and isinstance(out.get("name"), str),
                "invalid_v2_request",
                f"outputs[{j}] must be an object with a string 'name'",
            )
            out_parameters = out.get("parameters")
            _require(
                out_parameters is None or isinstance(out_parameters, dict),
                "invalid_v2_request",
                f"outputs[{j}].parameters must be an object",
            )
            requested.append(RequestedOutput(out["name"], out_parameters or {}))
    return InferRequest(
        model_name=model_name,
        infer_inputs=infer_inputs,
        request_id=request_id,
        parameters=parameters,
        request_outputs=requested or None,
    )
