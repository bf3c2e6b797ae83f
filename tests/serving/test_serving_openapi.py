"""``/openapi.json`` documents what the predictor answers, and a seeded fuzz run of the POST endpoints agrees."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisWarning
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

PREDICT_PATHS = [
    "/v1/models/{model_name}:predict",
    "/v1/models/{model_name}:explain",
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
]


def test_openapi_documents_errors_with_schemas(predictor):
    doc = predictor.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for path in PREDICT_PATHS:
        operation = doc["paths"][path]["post"]
        assert "$ref" in operation["requestBody"]["content"]["application/json"]["schema"], path
        assert {"200", "400", "404", "503"} <= set(operation["responses"]), path
        assert "422" not in operation["responses"], path  # never answered: validation errors are 400s
    bad = doc["paths"]["/v1/models/{model_name}:predict"]["post"]["responses"]["400"]
    bad_schema = schemas[bad["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert (
        bad_schema["required"] == ["error", "reason"]
        and "batch_too_large" in bad_schema["properties"]["reason"]["enum"]
    )
    assert schemas["V1Request"]["properties"]["instances"]["maxItems"] == 50  # the fixture's --max_batch_size
    for action in ("load", "unload"):  # every call is refused (405): nothing to offer a generated client
        assert f"/v2/repository/models/{{model_name}}/{action}" not in doc["paths"]
    assert set(doc["paths"]["/v2/health/ready"]["get"]["responses"]) == {"200", "503"}


def test_request_schemas_state_the_limits_the_server_enforces(predictor):
    doc = predictor.get("/openapi.json").json()
    v2 = doc["components"]["schemas"]["V2InferRequest"]["properties"]["inputs"]["items"]["anyOf"]
    by_datatype = {d: variant for variant in v2 for d in variant["properties"]["datatype"]["enum"]}
    texts, floats, ints = by_datatype["BYTES"], by_datatype["FP32"], by_datatype["INT64"]
    # batch size N from --max_batch_size (50 in the fixture); texts are [N] or [N,1], features [N,2]
    text_shapes = texts["properties"]["shape"]["anyOf"]
    assert [len(s["prefixItems"]) for s in text_shapes] == [1, 2] and text_shapes[1]["prefixItems"][1] == {"const": 1}
    batch = floats["properties"]["shape"]["prefixItems"][0]
    assert (batch["minimum"], batch["maximum"]) == (1, 50)
    assert floats["properties"]["shape"]["prefixItems"][1] == {"const": 2}
    # feature values: finite, 0..2**53, whole numbers for the integer datatypes
    assert floats["properties"]["data"]["items"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 2**53}
    assert ints["properties"]["data"]["items"]["anyOf"][0]["type"] == "integer"
    for path in PREDICT_PATHS:  # the body limit from --max_body_bytes
        assert doc["paths"][path]["post"]["requestBody"]["x-max-body-bytes"] == 65536, path
    # what the document says, the server does: one over each limit is refused with the documented reason
    too_many = {"inputs": [{"name": "t", "datatype": "BYTES", "shape": [51], "data": ["hi"] * 51}]}
    assert predictor.post_json("/v2/models/spam/infer", too_many).json()["reason"] == "batch_too_large"
    fraction = {"inputs": [{"name": "f", "datatype": "INT64", "shape": [1, 2], "data": [30, 1.5]}]}
    assert predictor.post_json("/v2/models/spam/infer", fraction).json()["reason"] == "wrong_datatype"
    big = predictor.post_json("/v1/models/spam:predict", {"instances": ["x" * 65536]})
    assert big.status == 400 and big.json()["reason"] == "body_too_large"


def test_documented_refusals_are_what_the_server_answers(predictor):
    doc = predictor.get("/openapi.json").json()
    reasons = set(doc["components"]["schemas"]["BadRequestBody"]["properties"]["reason"]["enum"])
    reply = predictor.post_json("/v1/models/spam:predict", {"instances": []})
    assert reply.status == 400 and reply.json()["reason"] in reasons
    reply = predictor.post_raw("/v1/models/spam:predict", b"{not json")  # KServe's own decoder refuses this one
    assert reply.status == 400 and reply.json()["reason"] == "invalid_json"
    assert predictor.post_json("/v2/repository/models/spam/unload", {}).status == 405
    assert predictor.post_json("/v1/models/nosuch:predict", {"instances": ["hi"]}).status == 404


def test_a_query_string_on_infer_is_not_a_version(predictor):
    doc = predictor.get("/openapi.json").json()
    assert not doc["paths"]["/v2/models/{model_name}/infer"]["post"].get("parameters", [])[1:]  # model_name only
    body = {"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2], "data": [30, 1]}]}
    assert predictor.post_json("/v2/models/spam/infer?model_version=other", body).status == 200


@pytest.mark.fuzz
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("path", PREDICT_PATHS)
def test_fuzzed_predict_requests_get_no_5xx_and_no_undocumented_status(predictor, path, mode):
    schema = schemathesis.openapi.from_url(f"{predictor.url}/openapi.json").include(method="POST", path=path)
    (operation,) = [result.ok() for result in schema.get_all_operations()]
    seen: list[int] = []

    @seed(20261201)
    @settings(
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        response = case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
        )
        seen.append(response.status_code)

    fuzz()
    assert len(seen) >= 15, seen
    # valid requests are answered, invalid ones refused with a 400 that names the reason
    assert set(seen) <= ({200, 400} if mode == GenerationMode.POSITIVE else {400, 404}), sorted(set(seen))


@pytest.mark.fuzz
def test_seeded_schemathesis_run_finds_nothing_and_warns_nothing(predictor, tmp_path):
    """The schemathesis CLI over every POST operation, its warnings as errors.

    A warning such as "mostly rejected generated data" means the document allows what
    the server refuses: a generated client or fuzzer would send it.
    """
    config = tmp_path / "schemathesis.toml"
    every_warning = ", ".join(f'"{w.value}"' for w in SchemathesisWarning)
    config.write_text(f"[warnings]\ndisplay = [{every_warning}]\nfail-on = true\n")
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run"),
            f"{predictor.url}/openapi.json",
            *("--include-method", "POST", "--seed", "20261201", "--workers", "1", "--phases", "coverage,fuzzing"),
            *("--generation-database", "none", "--report", "json", "--report-json-path", str(report)),
            "--checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # where it keeps its files
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    result = json.loads(report.read_text())
    assert not any(result["warnings"].values()), result["warnings"]
    assert sorted(result["valid_rates"]) == sorted(f"POST {p}" for p in PREDICT_PATHS)
    for operation, phases in result["valid_rates"].items():  # each operation served generated requests
        assert sum(phase["accepted"] for phase in phases.values()) > 0, (operation, phases)
