"""The Open Inference Protocol over gRPC reaches the same model code (KServe's gRPC server, port --grpc_port)."""

from __future__ import annotations

import asyncio
import functools

import grpc
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest

from spamops.features import message_features
from spamops_dev.predictor import HOST, free_port, metric

SPAMMY = "WINNER!! You have won a £1000 prize. Call 09061701461 now to claim, T&C apply, 18+ only!!"


def grpc_infer(port: int, request: InferRequest):
    """One ModelInfer call through KServe's own gRPC client, on a fresh event loop."""

    async def infer():
        client = InferenceGRPCClient(url=f"{HOST}:{port}", use_ssl=False, timeout=30)
        try:
            return await client.infer(request)
        finally:
            await client.close()

    return asyncio.run(infer())


def test_grpc_infer_with_texts_and_features(start_predictor, model_dir, production_version):
    port = free_port()
    start_predictor("--model_dir", str(model_dir), "--enable_grpc", "true", "--grpc_port", str(port))

    call = functools.partial(grpc_infer, port)

    texts = InferInput(name="text", shape=[2], datatype="BYTES")
    texts.set_data_from_numpy(np.array([SPAMMY.encode(), b"ok see you at 8"], dtype=np.object_))
    by_text = call(InferRequest("spam", [texts]))
    assert by_text.model_version == production_version
    labels = [v.decode() if isinstance(v, bytes) else v for v in by_text.get_output_by_name("label").as_numpy()]
    assert len(labels) == 2 and set(labels) <= {"ham", "spam"}

    features = InferInput(name="features", shape=[1, 2], datatype="FP32")
    features.set_data_from_numpy(np.array([message_features(SPAMMY)], dtype=np.float32))
    by_features = call(InferRequest("spam", [features]))
    assert by_features.get_output_by_name("spam_probability").as_numpy().shape == (1,)

    bad = InferInput(name="features", shape=[1, 2], datatype="FP32")
    bad.set_data_from_numpy(np.array([[-1.0, 2.0]], dtype=np.float32))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        call(InferRequest("spam", [bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "negative" in err.value.details()


def test_grpc_infer_on_a_not_ready_model_is_unavailable_without_reloading(start_predictor, model_copy):
    with (model_copy / "model.joblib").open("ab") as f:
        f.write(b"\0")  # tampered: refused at start
    port = free_port()
    server = start_predictor("--model_dir", str(model_copy), "--enable_grpc", "true", "--grpc_port", str(port))

    call = functools.partial(grpc_infer, port)

    texts = InferInput(name="text", shape=[1], datatype="BYTES")
    texts.set_data_from_numpy(np.array([b"hi"], dtype=np.object_))
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            call(InferRequest("spam", [texts]))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "sha256" in err.value.details()
    # refused once at start, never re-loaded on the request path
    assert server.log().count("NOT READY (checksum_mismatch)") == 1
    assert metric(server.metrics(), "spamops_model_load_failures_total", reason="checksum_mismatch") == 1


def test_grpc_repository_unload_and_load_are_refused_and_the_model_keeps_serving(start_predictor, model_dir):
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    port = free_port()
    start_predictor("--model_dir", str(model_dir), "--enable_grpc", "true", "--grpc_port", str(port))
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        for call, request in (
            (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="spam")),
            (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="spam")),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call(request, timeout=30)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, err.value.details()
            assert "restart the pod" in err.value.details()
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="spam"), timeout=30).ready
