"""What the stock KServe REST server lacks for us, installed on its FastAPI app before it starts.

* :class:`RequestGuard`, a pure ASGI middleware: refuses bodies over the size
  limit before they are read (:mod:`spamops.httpapi`, shared with the monitor and the
  trigger), and counts every HTTP 400 by reason.
* Exception handlers: our :class:`~spamops.serving.inputs.BadRequest` becomes a
  400 ``{"error", "reason"}`` without a stack trace in the log, and FastAPI's
  request-validation errors on the V2 endpoint become 400 instead of 422.
* Routes matched before KServe's: server readiness that is 503 until the model
  is verified and loaded, model metadata that reports the model version, and
  the V2 ``/infer`` route.  KServe's own ``/infer`` validates the body with a
  pydantic model, converts it twice and re-validates the response with another;
  ours decodes the JSON once with orjson, checks the same schema by hand
  (:func:`~spamops.serving.inputs.v2_request_from_json`), calls the model through
  the same ``kserve.Model.__call__`` (so KServe's latency histograms still count
  it) and writes the response with orjson.  It roughly halves the per-request
  cost of the framework on V2; see docs/serving.md.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest, InferResponse
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from spamops.httpapi import (
    JSON_CONTENT_TYPES,
    body_limit_refusal,
    declares_length,
    limited_receive,
    media_type,
    send_refusal,
)
from spamops.serving import metrics
from spamops.serving.inputs import BadRequest, v2_request_from_json
from spamops.serving.model import NotReady

logger = logging.getLogger("kserve.spamops")

# The reason of the 400 being answered in this request, set where it is decided.
_REASON: ContextVar[list[str] | None] = ContextVar("spamops_invalid_reason", default=None)


def note_reason(reason: str) -> None:
    """Record the 400's reason for :class:`RequestGuard`, which counts it once the response starts."""
    slot = _REASON.get()
    if slot is not None and not slot:
        slot.append(reason)


# Paths whose answers count in spamops_inference_responses_total (V1 and V2 inference).
INFERENCE_SUFFIXES = (":predict", ":explain", "/infer")


class RequestGuard:
    """Body-size limit, per-reason counting of 400s and per-status counting of inference answers."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        refusal = body_limit_refusal(headers, self.max_body_bytes)
        if refusal is not None:
            metrics.count_invalid(refusal.reason)
            await send_refusal(send, refusal)
            return
        if not declares_length(headers) and scope["method"] in ("POST", "PUT", "PATCH"):
            receive = limited_receive(receive, self.max_body_bytes, BadRequest)
        json_body = media_type(next((v for n, v in headers if n == b"content-type"), b"")) in JSON_CONTENT_TYPES
        slot: list[str] = []
        token = _REASON.set(slot)

        inference = scope["path"].endswith(INFERENCE_SUFFIXES)

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start" and inference:
                metrics.count_response(message["status"])
            if message["type"] == "http.response.start" and message["status"] == 400:
                # 400s we did not raise come from KServe decoding a body that is not JSON.
                metrics.count_invalid(
                    slot[0] if slot else ("invalid_json" if json_body else "unsupported_content_type")
                )
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            _REASON.reset(token)


async def bad_request_handler(_: Request, exc: BadRequest) -> JSONResponse:
    """Our :class:`BadRequest` as a 400 ``{"error", "reason"}``: one log line, no traceback."""
    note_reason(exc.reason_code)
    logger.info("400 %s: %s", exc.reason_code, exc)
    return JSONResponse(status_code=400, content={"error": str(exc), "reason": exc.reason_code})


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI answers 422 for a V2 body that is not JSON or not an inference request; we answer 400."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = "invalid_json"
    elif any(tuple(e.get("loc", ()))[-1:] == ("inputs",) and e.get("type") == "missing" for e in errors):
        reason = "missing_inputs"
    else:
        reason = "invalid_v2_request"
    if reason == "invalid_json":
        where = next((e.get("loc", ())[-1] for e in errors if e.get("type") == "json_invalid"), "?")
        message = f"body is not valid JSON (error at character {where})"
    else:
        # The endpoint also accepts raw bytes (binary tensors); errors about that branch only confuse.
        relevant = [e for e in errors if "bytes" not in e.get("loc", ())] or errors
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'InferenceRequest')) or 'body'}: "
            f"{e.get('msg', 'invalid')}"
            for e in relevant[:5]
        )
        message = f"not a valid Open Inference Protocol request: {details}"
    note_reason(reason)
    logger.info("400 %s: %s", reason, message)
    return JSONResponse(status_code=400, content={"error": message, "reason": reason})


def _read_only_message(model_name: str) -> str:
    return f"model {model_name} is loaded (and verified) at start-up only; restart the pod to change or reload it"


class RepositoryReadOnly(NotImplementedError):
    """Load/unload refused; ``reason`` is what KServe's gRPC interceptor sends with ``UNIMPLEMENTED``."""

    def __init__(self, model_name: str) -> None:
        self.reason = _read_only_message(model_name)
        super().__init__(self.reason)


class ReadOnlyRepository(ModelRepositoryExtension):
    """KServe's model repository extension without load and unload.

    Its unauthenticated unload would let any client empty the server, and its
    load would not re-run our verification; the model is fixed for the life of
    the pod.  This closes gRPC's ``RepositoryModelLoad``/``Unload``; the REST
    routes are shadowed in :func:`add_routes`.
    """

    async def load(self, model_name: str) -> None:
        raise RepositoryReadOnly(model_name)

    async def unload(self, model_name: str) -> None:
        raise RepositoryReadOnly(model_name)


def not_ready_body(model_name: str, detail: str | None, reason: str | None) -> dict[str, str]:
    """The 503 body: the load error and its reason label, so whoever probes reads why without the pod log."""
    return {
        "error": f"Model with name {model_name} is not ready: {detail or 'not loaded'}",
        "reason": reason or "not_loaded",
    }


def _not_ready(model: Any) -> JSONResponse:
    body = not_ready_body(model.name, getattr(model, "load_error", None), getattr(model, "load_reason", None))
    return JSONResponse(status_code=503, content=body)


def not_ready_handler(registry: ModelRepository) -> Any:
    """The handler of KServe's ``ModelNotReady`` (503): with the model's load error and reason, no traceback."""

    async def handle(_: Request, exc: ModelNotReady) -> JSONResponse:
        model = registry.get_model(exc.model_name)
        detail = getattr(exc, "detail", None) or getattr(model, "load_error", None)
        reason = getattr(exc, "reason_code", None) or getattr(model, "load_reason", None)
        return JSONResponse(status_code=503, content=not_ready_body(exc.model_name, detail, reason))

    return handle


def claim_error_handlers(app: FastAPI, registry: ModelRepository) -> None:
    """Re-register the handlers KServe replaces with its own when it creates the application.

    Call after KServe's ``create_application`` (:class:`spamops.serving.server.BoundRESTServer` does).
    """
    app.add_exception_handler(ModelNotReady, not_ready_handler(registry))
    app.add_exception_handler(InvalidInput, kserve_bad_request_handler)


async def kserve_bad_request_handler(request: Request, exc: InvalidInput) -> JSONResponse:
    """A 400 KServe raised itself (its V1 decoder on a body that is not JSON): our body, with a reason."""
    if isinstance(exc, BadRequest):
        return await bad_request_handler(request, exc)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    reason = "invalid_json" if content_type in JSON_CONTENT_TYPES else "unsupported_content_type"
    note_reason(reason)
    logger.info("400 %s: %s", reason, exc)
    return JSONResponse(status_code=400, content={"error": str(exc), "reason": reason})


class Routes:
    """Readiness, metadata, repository and V2 ``/infer`` routes over one model registry.

    Each handler is a bound method (FastAPI reads its signature without
    ``self``); :meth:`add_to` registers them before KServe's, so they are
    matched first.
    """

    def __init__(self, registry: ModelRepository) -> None:
        self.registry = registry

    def add_to(self, app: FastAPI) -> None:
        app.add_api_route("/v2/health/ready", self.server_ready, methods=["GET"])
        app.add_api_route("/v2/models/{model_name}/infer", self.v2_infer, methods=["POST"])
        app.add_api_route(
            "/v2/models/{model_name}/versions/{model_version}/infer", self.v2_infer_version, methods=["POST"]
        )
        app.add_api_route("/v1/models/{model_name}", self.v1_model, methods=["GET"])
        app.add_api_route("/v2/models/{model_name}/ready", self.v2_model_ready, methods=["GET"])
        for action in ("load", "unload"):
            app.add_api_route(
                f"/v2/repository/models/{{model_name}}/{action}", self.repository_change, methods=["POST"]
            )
        app.add_api_route("/v2/models/{model_name}", self.v2_model_metadata, methods=["GET"])

    def model(self, name: str) -> Any:
        """The registered model ``name``, or KServe's 404."""
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        return model

    async def server_ready(self) -> JSONResponse:
        """200 only when at least one model is registered and every one is ready: a server with
        nothing to serve must stay out of the Service."""
        models = self.registry.get_models().values()
        if not models:
            return JSONResponse(status_code=503, content={"error": "no model is loaded", "reason": "not_loaded"})
        for model in models:
            if not model.ready:
                return _not_ready(model)
        return JSONResponse({"ready": True})

    async def repository_change(self, model_name: str) -> JSONResponse:
        """405 for KServe's REST load/unload, for the reasons given in :class:`ReadOnlyRepository`."""
        return JSONResponse(
            status_code=405,
            headers={"Allow": ""},
            content={"error": _read_only_message(model_name), "reason": "repository_read_only"},
        )

    async def v1_model(self, model_name: str) -> JSONResponse:
        """V1 model status; unlike KServe's it names the served version, or the reason it is not ready."""
        model = self.model(model_name)
        if not model.ready:
            return _not_ready(model)
        return JSONResponse({"name": model_name, "ready": True, "version": getattr(model, "version", None)})

    async def v2_model_ready(self, model_name: str) -> JSONResponse:
        """V2 model readiness; unlike KServe's, the 503 says why."""
        model = self.model(model_name)
        if not model.ready:
            return _not_ready(model)
        return JSONResponse({"name": model_name, "ready": True})

    async def v2_model_metadata(self, model_name: str) -> JSONResponse:
        """V2 metadata with the model version in ``versions`` (KServe's leaves it empty)."""
        model = self.model(model_name)
        version = getattr(model, "version", None)
        return JSONResponse(
            {
                "name": model_name,
                "versions": [version] if version else [],
                "platform": "sklearn",
                "inputs": model.get_input_types(),
                "outputs": model.get_output_types(),
                "ready": bool(model.ready),
            }
        )

    async def v2_infer(self, model_name: str, request: Request) -> Response:
        """The lean V2 ``/infer`` (see the module docstring)."""
        return await self.infer(model_name, request, None)

    async def v2_infer_version(self, model_name: str, model_version: str, request: Request) -> Response:
        """``/versions/<version>/infer``: ``model_version`` must be the served one."""
        return await self.infer(model_name, request, model_version)

    async def infer(self, model_name: str, request: Request, model_version: str | None) -> Response:
        """Score a V2 request; a version, when named, must be the served one."""
        model = self.model(model_name)
        if not model.ready:  # before the version check: a not-ready model serves no version, which is a 503
            return _not_ready(model)
        if model_version is not None and model_version != getattr(model, "version", None):
            return JSONResponse(
                status_code=404,
                content={
                    "error": f"model {model_name} has no version {model_version!r}; it serves {model.version!r}",
                    "reason": "unknown_version",
                },
            )
        headers = dict(request.headers)
        infer_request = decode_v2(await request.body(), headers, model_name)
        response, response_headers = await model(infer_request, headers=headers)
        return encode_v2(response, response_headers)


def decode_v2(body: bytes, headers: dict[str, str], model_name: str) -> InferRequest:
    """A V2 body as an ``InferRequest``: our JSON decoder, or KServe's for the binary tensor extension."""
    json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
    if json_length is None:
        return v2_request_from_json(body, model_name)
    if not json_length.isdigit():
        raise BadRequest("invalid_v2_request", f"{INFERENCE_CONTENT_LENGTH_HEADER} must be an integer")
    try:
        return InferRequest.from_bytes(body, int(json_length), model_name)
    except Exception as exc:  # noqa: BLE001 - whatever the decoder trips on, the body is the client's error
        raise BadRequest("invalid_v2_request", f"binary inference request not decodable: {exc}") from None


def encode_v2(response: Any, headers: dict[str, str] | None) -> Response:
    """The model's answer as the HTTP response: our JSON-ready dict directly, an ``InferResponse`` via KServe."""
    if isinstance(response, InferResponse):
        payload, json_size = response.to_rest()
        if json_size is not None:
            headers = {**(headers or {}), INFERENCE_CONTENT_LENGTH_HEADER: str(json_size)}
    else:
        payload = response
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content=content, media_type="application/json", headers=headers or None)


def add_routes(app: FastAPI, registry: ModelRepository) -> None:
    """Readiness and metadata routes, added before KServe's so they are matched first."""
    Routes(registry).add_to(app)


class ClientErrorLogFilter(logging.Filter):
    """KServe logs every 400 and 503 with a full traceback; a client's mistake deserves one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput | ModelNotReady | RepositoryReadOnly):
            record.msg, record.args, record.exc_info, record.exc_text = "%s: %s", (type(exc).__name__, exc), None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def install(app: FastAPI, registry: ModelRepository, max_body_bytes: int) -> None:
    """Install the guard, the handlers and the routes on KServe's app (before ``ModelServer.start``)."""
    logging.getLogger("kserve").addFilter(ClientErrorLogFilter())
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes)
    # FastAPI's decorator, called: add_exception_handler's own type wants handlers of any Exception.
    app.exception_handler(BadRequest)(bad_request_handler)
    app.exception_handler(RequestValidationError)(validation_error_handler)
    app.add_exception_handler(NotReady, not_ready_handler(registry))  # KServe's own is claimed back at start
    add_routes(app, registry)


__all__ = ["install", "RequestGuard"]
