"""``/openapi.json`` documents what the predictor answers, and a seeded fuzz run of the POST endpoints agrees."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
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
    for action in ("load", "unload"):
        responses = doc["paths"][f"/v2/repository/models/{{model_name}}/{action}"]["post"]["responses"]
        assert set(responses) == {"405"}
    assert set(doc["paths"]["/v2/health/ready"]["get"]["responses"]) == {"200", "503"}


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
