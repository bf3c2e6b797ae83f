"""Every bad request gets HTTP 400, a JSON error naming the problem, and a count by reason; never a 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import struct

import pytest

from spamops_dev.predictor import HOST, metric

V1 = "/v1/models/spam:predict"
EXPLAIN = "/v1/models/spam:explain"
V2 = "/v2/models/spam/infer"
JSON = "application/json"


def v2(datatype="BYTES", shape=(1,), data=("hi",), name="text", **extra):
    return json.dumps(
        {"inputs": [{"name": name, "datatype": datatype, "shape": list(shape), "data": list(data)}], **extra}
    )


# (path, body, content type, reason label, words the message must contain)
CASES = [
    pytest.param(V1, b'{"instances": ["hi"', JSON, "invalid_json", "Unrecognized request format", id="v1-invalid-json"),
    pytest.param(
        V1,
        b"instances=hi",
        "application/x-www-form-urlencoded",
        "unsupported_content_type",
        "application/x-www-form-urlencoded",
        id="v1-form-urlencoded",
    ),
    pytest.param(
        V1,
        b'{"instances": ["hi"]}',
        "application/x-www-form-urlencoded",
        "unsupported_content_type",
        "Content-Type: application/json",
        id="v1-json-sent-as-form",
    ),
    pytest.param(V1, b'["hi"]', JSON, "invalid_body", "JSON object", id="v1-body-not-object"),
    pytest.param(V1, b'{"texts": ["hi"]}', JSON, "missing_instances", "no 'instances'", id="v1-missing-instances"),
    pytest.param(V1, b'{"inputs": []}', JSON, "missing_instances", "V2 endpoint", id="v1-v2-body-on-v1"),
    pytest.param(V1, b'{"instances": "hi"}', JSON, "wrong_datatype", "'instances' must be an array", id="v1-not-list"),
    pytest.param(V1, b'{"instances": []}', JSON, "empty_batch", "empty", id="v1-empty"),
    pytest.param(
        V1,
        json.dumps({"instances": ["x"] * 51}).encode(),
        JSON,
        "batch_too_large",
        "maximum per request is 50",
        id="v1-batch-too-large",
    ),
    pytest.param(V1, b'{"instances": [[1, 2, 3]]}', JSON, "wrong_shape", "[length, punct]", id="v1-wrong-shape"),
    pytest.param(V1, b'{"instances": [[[1, 2], 3]]}', JSON, "wrong_datatype", "expected a number", id="v1-nested"),
    pytest.param(
        V1, b'{"instances": [["1", 2]]}', JSON, "wrong_datatype", "instances[0][0] (length)", id="v1-string-feature"
    ),
    pytest.param(V1, b'{"instances": [[true, 2]]}', JSON, "wrong_datatype", "got boolean", id="v1-bool-feature"),
    pytest.param(V1, b'{"instances": [42]}', JSON, "wrong_datatype", "instances[0]", id="v1-number-instance"),
    pytest.param(V1, b'{"instances": [null]}', JSON, "wrong_datatype", "got null", id="v1-null-instance"),
    pytest.param(
        V1, b'{"instances": [{"text": 5}]}', JSON, "non_string_text", "text must be a string", id="v1-nonstring-text"
    ),
    pytest.param(
        V1, b'{"instances": [{"message": "hi"}]}', JSON, "wrong_shape", "'text' field", id="v1-object-no-text"
    ),
    pytest.param(V1, b'{"instances": [[-1, 2]]}', JSON, "invalid_feature_value", "negative", id="v1-negative"),
    pytest.param(
        V1, b'{"instances": [[NaN, 2]]}', JSON, "invalid_json", "Unrecognized request format", id="v1-nan-literal"
    ),
    pytest.param(V1, b'{"instances": [[1e999, 2]]}', JSON, "invalid_json", "infinity", id="v1-infinite"),
    pytest.param(
        V1, b'{"instances": [[1152921504606846976, 2]]}', JSON, "invalid_feature_value", "too large", id="v1-huge-int"
    ),
    pytest.param(EXPLAIN, b'{"instances": [{"text": ["a"]}]}', JSON, "non_string_text", "got array", id="explain-bad"),
    pytest.param(V2, b'{"inputs": [', JSON, "invalid_json", "not valid JSON", id="v2-invalid-json"),
    pytest.param(V2, b'{"instances": ["hi"]}', JSON, "missing_inputs", "no 'inputs'", id="v2-missing-inputs"),
    pytest.param(V2, b'{"inputs": []}', JSON, "missing_inputs", "no inputs", id="v2-empty-inputs"),
    pytest.param(
        V2,
        b'{"inputs": [{"name": "t", "shape": [1], "data": ["a"]}]}',
        JSON,
        "invalid_v2_request",
        "'datatype'",
        id="v2-no-datatype",
    ),
    pytest.param(V2, v2(shape=(0,), data=()).encode(), JSON, "empty_batch", "empty", id="v2-empty-batch"),
    pytest.param(V2, v2(shape=(51,), data=["x"] * 51).encode(), JSON, "batch_too_large", "maximum", id="v2-too-large"),
    pytest.param(V2, v2(shape=(2,), data=["a"]).encode(), JSON, "wrong_shape", "says 2 texts", id="v2-shape-mismatch"),
    pytest.param(
        V2, v2(shape=(1,), data=[5]).encode(), JSON, "non_string_text", "text must be a string", id="v2-number-text"
    ),
    pytest.param(
        V2, v2("FP32", (1, 3), [1, 2, 3], "features").encode(), JSON, "wrong_shape", "[N,2]", id="v2-3-features"
    ),
    pytest.param(
        V2,
        v2("FP32", (1, 2), [1, "a"], "features").encode(),
        JSON,
        "wrong_datatype",
        "expected a number",
        id="v2-string-feature",
    ),
    pytest.param(
        V2,
        v2("INT64", (1, 2), [1.5, 2], "features").encode(),
        JSON,
        "wrong_datatype",
        "not an integer",
        id="v2-float-in-int",
    ),
    pytest.param(
        V2,
        v2("FP32", (1, 2), [3, -2], "features").encode(),
        JSON,
        "invalid_feature_value",
        "negative",
        id="v2-negative",
    ),
    pytest.param(
        V2,
        v2("BOOL", (1, 2), [True, False], "features").encode(),
        JSON,
        "wrong_datatype",
        "BOOL",
        id="v2-bool-datatype",
    ),
    pytest.param(
        V2,
        json.dumps({"inputs": [json.loads(v2())["inputs"][0]] * 2}).encode(),
        JSON,
        "wrong_shape",
        "exactly one input",
        id="v2-two-inputs",
    ),
    pytest.param(V2, v2(outputs=[{"name": "nope"}]).encode(), JSON, "unknown_output", "'nope'", id="v2-unknown-output"),
    pytest.param(V2, b"\x00\x01", "application/octet-stream", "invalid_json", "not valid JSON", id="v2-binary-garbage"),
    *(
        pytest.param(
            V2,
            v2(outputs=[{"name": "label", "parameters": bad}]).encode(),
            JSON,
            "invalid_v2_request",
            "outputs[0].parameters must be an object",
            id=f"v2-output-parameters-{kind}",
        )
        for kind, bad in (("string", "x"), ("array", [1]), ("number", 5))
    ),
    pytest.param(
        V2,
        json.dumps({"inputs": [{**json.loads(v2())["inputs"][0], "parameters": "x"}]}).encode(),
        JSON,
        "invalid_v2_request",
        "inputs[0].parameters must be an object",
        id="v2-input-parameters-string",
    ),
]


def binary_v2(values: list[float]) -> tuple[bytes, dict]:
    """A V2 request in the binary tensor extension: JSON header, then raw little-endian FP32."""
    raw = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": [len(values) // 2, 2],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    return header + raw, {
        "Content-Type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


def binary_request(header: dict, raw: bytes) -> tuple[bytes, dict]:
    """A binary-extension request from an arbitrary JSON header and raw tensor bytes."""
    head = json.dumps(header).encode()
    return head + raw, {"Content-Type": "application/octet-stream", "inference-header-content-length": str(len(head))}


BYTES_HEADER = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 8}}]}


@pytest.mark.parametrize(
    ("header", "raw"),
    [
        pytest.param({"inputs": ["x"]}, b"", id="input-not-object"),
        pytest.param(BYTES_HEADER, struct.pack("<I", 100) + b"abcd", id="truncated-bytes"),
        pytest.param(
            {**BYTES_HEADER, "outputs": [{"name": "label", "parameters": "x"}]},
            struct.pack("<I", 4) + b"abcd",
            id="output-parameters-string",
        ),
    ],
)
def test_malformed_binary_requests_are_a_400(predictor, header, raw):
    body, headers = binary_request(header, raw)
    reply = predictor.request("POST", V2, body, headers)
    assert reply.status == 400, (reply.status, reply.body)
    assert reply.json()["reason"] == "invalid_v2_request"


@pytest.mark.parametrize(("value", "words"), [(math.nan, "nan is not a finite"), (math.inf, "inf is not a finite")])
def test_nan_and_infinite_features_are_refused(predictor, value, words):
    body, headers = binary_v2([value, 2.0])
    reply = predictor.request("POST", V2, body, headers)
    assert reply.status == 400, reply.body
    assert reply.json()["reason"] == "invalid_feature_value" and words in reply.json()["error"]
    ok_body, ok_headers = binary_v2([30.0, 2.0])
    assert predictor.request("POST", V2, ok_body, ok_headers).status == 200


@pytest.mark.parametrize(("path", "body", "content_type", "reason", "words"), CASES)
def test_bad_input_is_a_400_naming_the_problem(predictor, path, body, content_type, reason, words):
    before = metric(predictor.metrics(), "spamops_invalid_requests_total", reason=reason)
    reply = predictor.post_raw(path, body, content_type)
    assert reply.status == 400, (reply.status, reply.body)
    doc = reply.json()
    assert words in doc["error"], doc
    if "reason" in doc:
        assert doc["reason"] == reason
    assert metric(predictor.metrics(), "spamops_invalid_requests_total", reason=reason) == before + 1


def test_body_over_the_limit_is_refused_before_reading(predictor):
    body = json.dumps({"instances": ["x" * 70_000]}).encode()  # the fixture's limit is 65536 bytes
    reply = predictor.post_raw(V1, body)
    assert reply.status == 400
    assert reply.json()["reason"] == "body_too_large" and "65536" in reply.json()["error"]


def test_chunked_body_over_the_limit_is_refused(predictor):
    conn = http.client.HTTPConnection(HOST, predictor.port, timeout=30)
    chunks = (b'{"instances": ["' if i == 0 else b"x" * 8192 for i in range(10))
    conn.request("POST", V1, body=chunks, headers={"Content-Type": JSON}, encode_chunked=True)
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 400 and doc["reason"] == "body_too_large"


def test_no_bad_input_ever_produced_a_500(predictor):
    assert "500" not in {line.split()[-2] for line in predictor.log().splitlines() if '" 500 ' in line}
    assert "Traceback" not in predictor.log()


def test_non_numeric_content_length_is_its_own_400():
    """uvicorn already refuses such a request; the guard must not call it too large behind another server."""
    from spamops.serving.http import RequestGuard

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the guard let a request with a bad Content-Length through")

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"abc")]}
    asyncio.run(RequestGuard(app, max_body_bytes=100)(scope, receive, send))
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["reason"] == "bad_content_length"
