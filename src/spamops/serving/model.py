"""``SpamModel``: the ``kserve.Model`` that serves one verified model version.

Readiness is decided by :meth:`SpamModel.load` alone: a missing, tampered or
mismatched artifact leaves the model registered but not ready, so KServe's
readiness endpoints answer 503 and the pod is kept out of the Service while the
log says why, instead of the process exiting and crash-looping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import ModelNotReady
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from spamops.features import FEATURE_NAMES, FEATURE_SPEC_VERSION, LABELS
from spamops.serving import metrics
from spamops.serving.artifact import Artifact, ArtifactError, load_artifact, read_card
from spamops.serving.explain import Explainer
from spamops.serving.inference_log import REQUEST_ID_HEADER, InferenceLog, request_id
from spamops.serving.inputs import BadRequest, parse_v1, parse_v2
from spamops.serving.lookup import DecisionTable, Row, Scores, grid_bounds
from spamops.serving.settings import ServingSettings

logger = logging.getLogger("kserve.spamops")

INPUT_TYPES = [
    {"name": "text", "datatype": "BYTES", "shape": [-1]},
    {"name": "features", "datatype": "FP32", "shape": [-1, len(FEATURE_NAMES)]},
]
OUTPUT_TYPES = [
    {"name": "label", "datatype": "BYTES", "shape": [-1]},
    {"name": "spam_probability", "datatype": "FP32", "shape": [-1]},
]
OUTPUT_NAMES = tuple(o["name"] for o in OUTPUT_TYPES)
OUTPUT_DATATYPES = {o["name"]: o["datatype"] for o in OUTPUT_TYPES}


class NotReady(ModelNotReady):
    """KServe's ``ModelNotReady`` (503 on REST) with the ``reason`` its gRPC interceptor reads.

    The stock class has no ``reason`` attribute, so on gRPC it would become an
    internal error instead of ``UNAVAILABLE``.
    """

    def __init__(self, model_name: str, detail: str | None = None, reason_code: str = "not_loaded") -> None:
        super().__init__(model_name, detail)
        self.detail = detail
        self.reason = self.error_msg
        self.reason_code = reason_code  # the load failure's label, as in spamops_model_load_failures_total


class SpamModel(Model):
    """The spam classifier behind ``:predict``, ``:explain`` and ``/infer``."""

    ready: bool  # KServe's Model sets it; declared for the type checker

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        settings: ServingSettings | None = None,
        inference_log: InferenceLog | None = None,
    ) -> None:
        super().__init__(name, return_response_headers=True)  # predict() sets x-request-id
        self.inference_log = inference_log
        self.model_dir = Path(model_dir)
        self.settings = settings or ServingSettings()
        self.artifact: Artifact | None = None
        self.table: DecisionTable | None = None
        self.explainer: Explainer | None = None
        self.load_error: str | None = None
        self.load_reason: str | None = None  # e.g. checksum_mismatch: what the 503 bodies carry as "reason"
        self._metrics: metrics.VersionMetrics | None = None
        self.shadow: Any = None  # a spamops.serving.shadow.Shadow when SHADOW_STORAGE_URI is set (__main__)
        metrics.MODEL_READY.labels(name).set(0)

    # -- lifecycle ------------------------------------------------------------
    @property
    def version(self) -> str | None:
        """The served model version (from the verified card), ``None`` until loaded."""
        return self.artifact.version if self.artifact else None

    def load(self) -> bool:
        """Verify and load the model directory; on refusal log one clear line and stay not ready.

        Runs once: KServe's data plane calls ``load()`` on the request path whenever
        the model is not ready, and retrying a refused artifact per request would
        re-hash and re-log it on every call while answering nothing different.
        """
        if self.load_error is not None:
            return self.ready
        started = time.perf_counter()
        try:
            artifact = load_artifact(self.model_dir)
            verify_seconds = time.perf_counter() - started
            max_length, max_punct = grid_bounds(
                artifact.feature_statistics,
                self.settings.table_max_length,
                self.settings.table_max_punct,
                self.settings.table_max_cells,
            )
            table = DecisionTable(artifact.pipeline, max_length, max_punct)
            explainer = Explainer(artifact.pipeline, artifact.feature_statistics)
        except ArtifactError as exc:
            self.fail(exc.reason, str(exc))
            self._name_refused_version()
            return False
        except Exception as exc:  # noqa: BLE001 - whatever else goes wrong, stay up and not ready, saying why
            self.fail("load_failed", f"{self.model_dir}: {type(exc).__name__}: {exc}")
            self._name_refused_version()
            return False
        self.artifact, self.table, self.explainer = artifact, table, explainer
        self._metrics = metrics.VersionMetrics(artifact.version)
        self.load_error = None
        self.ready = True
        metrics.MODEL_INFO.labels(self.name, artifact.version, FEATURE_SPEC_VERSION).set(1)
        metrics.MODEL_READY.labels(self.name).set(1)
        logger.info(
            "model %s READY: version %s from %s (sha256 verified in %.2fs); decision table %dx%d (%d cells) built in %.2fs",
            self.name,
            artifact.version,
            self.model_dir,
            verify_seconds,
            table.max_length + 1,
            table.max_punct + 1,
            table.cells,
            table.build_seconds,
        )
        return True

    def _name_refused_version(self) -> None:
        """``spamops_model_info`` 0 for the version the card names: its 503s can be told apart by version.

        The rollout's success rate joins the per-status answer counter to a version through
        this gauge; a canary whose artifact is refused answers only 503s and must show as
        failing, not as a version without data.
        """
        try:
            version = read_card(self.model_dir).version
        except ArtifactError:
            return
        metrics.MODEL_INFO.labels(self.name, version, FEATURE_SPEC_VERSION).set(0)

    def fail(self, reason: str, message: str) -> None:
        """Mark the model not ready for ``reason``, with the log line an operator will look for."""
        self.ready = False
        self.load_error = message
        self.load_reason = reason
        metrics.LOAD_FAILURES.labels(self.name, reason).inc()
        metrics.MODEL_READY.labels(self.name).set(0)
        logger.error("model %s NOT READY (%s): %s", self.name, reason, message)

    def start(self) -> None:
        """KServe's default marks every model ready on start; ours is ready only once verified."""

    def stop(self) -> None:
        """On shutdown: readiness (and its gauge) drop first, so traffic drains before the process exits."""
        self.ready = False
        metrics.MODEL_READY.labels(self.name).set(0)
        if self.inference_log is not None:
            self.inference_log.close()

    # -- metadata -------------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        """The V2 metadata inputs: BYTES ``[N]`` texts or FP32 ``[N, 2]`` features."""
        return INPUT_TYPES

    def get_output_types(self) -> list[dict]:
        """The V2 metadata outputs: ``label`` and ``spam_probability``."""
        return OUTPUT_TYPES

    # -- inference ------------------------------------------------------------
    def validate(self, payload: Any) -> Any:
        """All validation happens in :mod:`spamops.serving.inputs`, which names each problem."""
        return payload

    def score(self, rows: Sequence[Row] | np.ndarray, rid: str | None = None) -> Scores:
        """Score validated rows and count them in the metrics; with a request id, log them too."""
        artifact, table, _, version_metrics = self._loaded()
        scores = table.score(rows)
        version_metrics.record(rows, scores.probability, scores.spam_count, scores.fallbacks)
        if self.shadow is not None:  # queued for the shadow model; never waits, never changes the answer
            self.shadow.submit(rows, scores)
        if rid is not None and self.inference_log is not None:
            self.inference_log.record(rid, artifact.version, rows, scores.probability, scores.is_spam)
        return scores

    def _loaded(self) -> tuple[Artifact, DecisionTable, Explainer, metrics.VersionMetrics]:
        """The parts ``load()`` set, all together; :class:`NotReady` (503) while any is missing."""
        if self.artifact is None or self.table is None or self.explainer is None or self._metrics is None:
            raise NotReady(self.name, self.load_error or "not loaded", self.load_reason or "not_loaded")
        return self.artifact, self.table, self.explainer, self._metrics

    def check_ready(self) -> None:
        """503 (gRPC ``UNAVAILABLE``) with the load error, before anything touches the missing table."""
        if not self.ready or self.table is None:
            raise NotReady(self.name, self.load_error or "not loaded", self.load_reason or "not_loaded")

    def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        """Score V1 ``:predict`` bodies and V2 requests (REST ``InferRequest`` or gRPC ``ModelInferRequest``).

        Every answer carries a request id (``x-request-id`` header, and V2's ``id``): the
        V2 request's ``id`` or the ``x-request-id`` header when given, else a new one.
        It is the id of the inference log's entry, which feedback labels name.
        """
        self.check_ready()
        started = time.perf_counter()
        if isinstance(payload, ModelInferRequest):
            payload = InferRequest.from_grpc(payload)
        rid = request_id(headers, payload.id if isinstance(payload, InferRequest) else None)
        if response_headers is not None:
            response_headers[REQUEST_ID_HEADER] = rid
        if isinstance(payload, InferRequest):
            answer = self._infer_v2(payload, rid)
            self._loaded()[3].answered(time.perf_counter() - started)
            return answer
        rows = parse_v1(payload, headers, self.settings.max_batch)
        scores = self.score(rows, rid)
        version = self._loaded()[0].version
        answer = {
            "predictions": [
                {"label": LABELS[s], "spam_probability": p, "model_version": version}
                for p, s in zip(scores.probability, scores.is_spam, strict=True)
            ]
        }
        self._loaded()[3].answered(time.perf_counter() - started)
        return answer

    def _infer_v2(self, request: InferRequest, rid: str) -> dict | InferResponse:
        """Outputs ``label`` (BYTES) and ``spam_probability`` (FP32), each of shape ``[N]``.

        For a JSON REST request the response is built directly in its JSON form:
        ``InferResponse.to_rest`` would re-convert every value through numpy, one
        BYTES element at a time, which costs more than scoring a 100-row batch.
        gRPC and binary-output requests get the ``InferResponse`` KServe encodes.
        """
        requested = request.request_outputs or []
        for output in requested:
            if output.name not in OUTPUT_NAMES:
                raise BadRequest("unknown_output", f"output {output.name!r} does not exist; outputs are {OUTPUT_NAMES}")
            if not request.from_grpc and not isinstance(output.parameters or {}, dict):
                # a binary-extension header is not schema-checked like a JSON body
                raise BadRequest("invalid_v2_request", f"output {output.name!r}: parameters must be an object")
        rows = parse_v2(request, self.settings.max_batch)
        scores = self.score(rows, rid)
        version = self._loaded()[0].version
        n = len(rows)
        data = {
            "label": scores.labels(),
            "spam_probability": scores.probability_fp32(),
        }
        names = [o.name for o in requested] or list(OUTPUT_NAMES)
        binary = (
            request.from_grpc
            or request.use_binary_outputs
            or any((o.parameters or {}).get("binary_data") for o in requested)
        )
        if not binary:
            return {
                "id": rid,
                "model_name": self.name,
                "model_version": version,
                "outputs": [
                    {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": [n], "data": data[name]}
                    for name in names
                ],
            }
        outputs = [
            InferOutput(name=name, shape=[n], datatype=OUTPUT_DATATYPES[name], data=data[name]) for name in names
        ]
        return InferResponse(
            response_id=rid,
            model_name=self.name,
            model_version=version,
            infer_outputs=outputs,
            requested_outputs=request.request_outputs,
            use_binary_outputs=request.use_binary_outputs,
        )

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        """V1 ``:explain``: each prediction with its feature positions and voting neighbours."""
        self.check_ready()
        if isinstance(payload, InferRequest | ModelInferRequest):
            raise BadRequest("wrong_protocol", "explanations are served on the V1 endpoint /v1/models/<name>:explain")
        rows = parse_v1(payload, headers, self.settings.max_batch)
        scores = self.score(rows)
        artifact, _, explainer, _ = self._loaded()
        return {"explanations": explainer.explain(rows, scores.probability, scores.is_spam, artifact.version)}
