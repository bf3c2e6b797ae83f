"""V1 predict, V2 infer (raw and through kserve.InferenceRESTClient), explain, metadata, readiness."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from spamops.features import features_matrix, message_features
from spamops.training.evaluate import spam_probability

SPAMMY = "WINNER!! You have won a £1000 prize. Call 09061701461 now to claim, T&C apply, 18+ only!!"
HAMMY = "Ok see you at 8"


@pytest.fixture(scope="module")
def pipeline(model_dir: Path):
    return joblib.load(model_dir / "model.joblib")


def expected(pipeline, texts: list[str]) -> list[tuple[str, float]]:
    probs = spam_probability(pipeline, features_matrix(texts))
    labels = pipeline.predict(features_matrix(texts))
    return [("spam" if lab == 1 else "ham", float(p)) for lab, p in zip(labels, probs, strict=True)]


def test_v1_predict_texts_match_the_pipeline_and_name_the_version(predictor, pipeline, production_version):
    reply = predictor.post_json("/v1/models/spam:predict", {"instances": [SPAMMY, HAMMY]})
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    assert [(p["label"], p["spam_probability"]) for p in predictions] == expected(pipeline, [SPAMMY, HAMMY])
    assert {p["model_version"] for p in predictions} == {production_version}
    assert predictions[0]["label"] == "spam" and predictions[1]["label"] == "ham"


def test_v1_accepts_feature_pairs_and_text_objects(predictor, pipeline):
    pair = list(message_features(SPAMMY))
    reply = predictor.post_json(
        "/v1/models/spam:predict", {"instances": [pair, {"text": SPAMMY}, [4000, 0], [12.5, 1.0]]}
    )
    assert reply.status == 200, reply.body
    got = [p["spam_probability"] for p in reply.json()["predictions"]]
    want = spam_probability(pipeline, np.array([pair, pair, [4000, 0], [12.5, 1.0]], dtype=float))
    assert got == want.tolist()


def test_v2_infer_texts_and_features(predictor, pipeline, production_version):
    texts = [SPAMMY, HAMMY, ""]
    reply = predictor.post_json(
        "/v2/models/spam/infer",
        {"id": "req-1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": texts}]},
    )
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["id"] == "req-1" and doc["model_version"] == production_version
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["shape"] == [3]
    assert outputs["spam_probability"]["datatype"] == "FP32"
    want = expected(pipeline, texts)
    assert outputs["label"]["data"] == [w[0] for w in want]
    assert outputs["spam_probability"]["data"] == pytest.approx([w[1] for w in want], abs=1e-7)

    features = features_matrix(texts).astype(int).tolist()
    for datatype in ("FP32", "INT64"):
        reply = predictor.post_json(
            "/v2/models/spam/infer",
            {"inputs": [{"name": "features", "datatype": datatype, "shape": [3, 2], "data": features}]},
        )
        assert reply.status == 200, reply.body
        outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
        assert outputs["label"] == [w[0] for w in want]


def test_v2_requested_outputs_are_honoured(predictor):
    reply = predictor.post_json(
        "/v2/models/spam/infer",
        {
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [HAMMY]}],
            "outputs": [{"name": "label"}],
        },
    )
    assert reply.status == 200, reply.body
    assert [o["name"] for o in reply.json()["outputs"]] == ["label"]


def test_v2_through_the_kserve_rest_client(predictor, pipeline, production_version):
    async def infer():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            text = InferInput(name="text", shape=[2], datatype="BYTES", data=[SPAMMY, HAMMY])
            features = InferInput(name="features", shape=[1, 2], datatype="FP32")
            features.set_data_from_numpy(np.array([message_features(SPAMMY)], dtype=np.float32), binary_data=False)
            by_text = await client.infer(predictor.url, InferRequest("spam", [text]), model_name="spam")
            by_features = await client.infer(predictor.url, InferRequest("spam", [features]), model_name="spam")
            ready = await client.is_model_ready(predictor.url, "spam")
            return by_text, by_features, ready
        finally:
            await client.close()

    by_text, by_features, ready = asyncio.run(infer())
    assert ready is True
    # (kserve 0.21's client drops model_version when decoding; the raw-JSON test above checks it)
    assert by_text.model_name == "spam"
    labels = by_text.get_output_by_name("label").as_numpy().tolist()
    assert [lab.decode() if isinstance(lab, bytes) else lab for lab in labels] == ["spam", "ham"]
    want = expected(pipeline, [SPAMMY])[0][1]
    assert by_features.get_output_by_name("spam_probability").as_numpy().tolist() == pytest.approx([want], abs=1e-7)


def test_explain_gives_position_neighbours_and_a_sentence(predictor, model_dir, pipeline, production_version):
    card = json.loads((model_dir / "model-card.json").read_text())
    reply = predictor.post_json("/v1/models/spam:explain", {"instances": [SPAMMY]})
    assert reply.status == 200, reply.body
    (exp,) = reply.json()["explanations"]
    length, punct = message_features(SPAMMY)
    assert exp["features"] == {"length": length, "punct": punct}
    assert exp["model_version"] == production_version
    assert (exp["label"], exp["spam_probability"]) == expected(pipeline, [SPAMMY])[0]
    # Position from the card's percentiles: the share of training messages strictly shorter.
    percentiles = card["feature_statistics"]["length"]["percentiles"]
    assert exp["feature_position"]["length"]["share_below"] == max(0, sum(p < length for p in percentiles) - 1)
    assert exp["feature_position"]["length"]["training_max"] == card["feature_statistics"]["length"]["max"]
    # The neighbours are the fitted KNN's own, with labels and distances (and no text).
    knn = pipeline.named_steps["knn"]
    distances, indices = knn.kneighbors(pipeline.named_steps["scale"].transform([[length, punct]]))
    assert [n["distance"] for n in exp["neighbours"]] == pytest.approx(distances[0].tolist(), abs=1e-6)
    raw = np.rint(pipeline.named_steps["scale"].inverse_transform(knn._fit_X[indices[0]])).astype(int).tolist()
    assert [[n["length"], n["punct"]] for n in exp["neighbours"]] == raw
    assert len(exp["neighbours"]) == knn.n_neighbors
    assert all(set(n) == {"label", "distance", "length", "punct"} for n in exp["neighbours"])
    sentence = exp["explanation"]
    assert sentence.startswith(f"{exp['label']} ({exp['spam_probability']:.2f}): {length} characters (")
    assert f"{punct} punctuation marks" in sentence and "nearest training message" in sentence


def test_explain_sentence_counts_the_neighbour_vote():
    from spamops.serving.explain import sentence

    positions = {
        "length": {"value": 155, "share_below": 96, "share_above": 3},
        "punct": {"value": 6, "share_below": 90, "share_above": 5},
    }
    voters = [{"label": "spam"}] * 4 + [{"label": "ham"}]
    assert sentence("spam", 0.8, positions, voters) == (
        "spam (0.80): 155 characters (longer than 96% of training messages) and 6 punctuation marks "
        "(more than 90% of training messages); 4 of its 5 nearest training messages are spam."
    )


def test_metadata_and_readiness_report_the_version(predictor, production_version):
    v2 = predictor.get("/v2/models/spam")
    assert v2.status == 200 and v2.json()["versions"] == [production_version]
    assert {i["datatype"] for i in v2.json()["inputs"]} == {"BYTES", "FP32"}
    assert [o["name"] for o in v2.json()["outputs"]] == ["label", "spam_probability"]
    v1 = predictor.get("/v1/models/spam")
    assert v1.status == 200 and v1.json() == {"name": "spam", "ready": True, "version": production_version}
    assert predictor.get("/v2/health/ready").status == 200
    assert predictor.get("/v2/models/spam/ready").status == 200
    assert predictor.get("/v2/health/live").status == 200
    assert predictor.get("/v1/models/nosuch").status == 404


def test_metrics_count_predictions_features_and_probabilities(predictor, production_version):
    from spamops_dev.predictor import metric

    before = predictor.metrics()
    reply = predictor.post_json("/v1/models/spam:predict", {"instances": [SPAMMY, SPAMMY, HAMMY]})
    assert reply.status == 200
    after = predictor.metrics()

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    v = production_version
    assert delta("spamops_predictions_total", label="spam", model_version=v) == 2
    assert delta("spamops_predictions_total", label="ham", model_version=v) == 1
    assert delta("spamops_spam_probability_count", model_version=v) == 3
    assert delta("spamops_input_length_characters_count", model_version=v) == 3
    assert delta("spamops_input_length_characters_sum", model_version=v) == 2 * len(SPAMMY) + len(HAMMY)
    assert delta("spamops_input_punctuation_marks_count", model_version=v) == 3
    assert delta("spamops_input_length_characters_bucket", le="20.0", model_version=v) == 1  # HAMMY only
    assert metric(after, "spamops_model_ready", model_name="spam") == 1
    assert metric(after, "spamops_model_info", model_version=v) == 1
    assert "request_predict_seconds_count" in "".join(after)  # KServe's own histograms stay


def test_every_inference_answer_is_counted_by_status_for_the_rollouts_success_rate(predictor):
    from spamops_dev.predictor import metric

    before = predictor.metrics()
    assert predictor.post_json("/v1/models/spam:predict", {"instances": [HAMMY]}).status == 200
    assert predictor.post_json("/v2/models/spam/infer", {"inputs": []}).status == 400
    assert predictor.get("/v2/health/ready").status == 200  # not an inference: not counted
    after = predictor.metrics()

    def delta(code):
        return metric(after, "spamops_inference_responses_total", code=code) - metric(
            before, "spamops_inference_responses_total", code=code
        )

    assert (delta("200"), delta("400")) == (1, 1)


@pytest.mark.parametrize("action", ["unload", "load"])
def test_repository_load_and_unload_are_refused_and_the_model_keeps_serving(predictor, action):
    reply = predictor.post_raw(f"/v2/repository/models/spam/{action}", b"")
    assert reply.status == 405, reply.body
    assert reply.json()["reason"] == "repository_read_only" and "restart the pod" in reply.json()["error"]
    assert predictor.get("/v2/health/ready").status == 200
    assert predictor.post_json("/v1/models/spam:predict", {"instances": [HAMMY]}).status == 200


def test_server_with_no_model_is_not_ready():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from kserve.model_repository import ModelRepository

    from spamops.serving.http import add_routes

    app = FastAPI()
    add_routes(app, ModelRepository())
    reply = TestClient(app).get("/v2/health/ready")
    assert reply.status_code == 503 and "no model" in reply.json()["error"]
