"""The HTTP conventions of every spamops server: the predictor, the monitor and the retrain trigger.

* A refused request gets a JSON body ``{"error": what is wrong and what to do, "reason": a
  short code}``; a client's mistake is a 400 (an unknown path a 404, a wrong method a 405).
* The body limit is enforced before the body is read: a ``Content-Length`` over it (or not a
  number) is refused at once, and a chunked body is cut off as soon as it passes the limit.

:class:`BodyLimit` and :func:`install` give a FastAPI application both; the predictor's
``RequestGuard`` (:mod:`spamops.serving.http`) builds on the same two functions.
:class:`Server` runs an application on uvicorn, binding the address first so that a bad
``--bind``/``--port`` is one line before anything else starts.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spamops.errors import BadInputError

JSON_CONTENT_TYPES = ("application/json", "application/cloudevents+json", "application/ld+json")


class Refusal(Exception):
    """An answer that is not a success: ``status`` with ``{"error": message, "reason": reason, **extra}``."""

    def __init__(self, reason: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "reason": self.reason, **self.extra}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=self.status, content=self.body(), headers=headers)


def media_type(value: str | bytes | None) -> str:
    """The media type of a ``Content-Type`` value, lower case, without parameters (``""`` when absent)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return (value or "").split(";")[0].strip().lower()


def body_limit_refusal(headers: Iterable[tuple[bytes, bytes]], limit: int) -> Refusal | None:
    """The 400 that a request's headers alone earn (a ``Content-Length`` over ``limit`` or not a size), if any."""
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                # not a size at all: saying "too large" would send the client hunting the wrong bug
                return Refusal("bad_content_length", "Content-Length must be a non-negative integer")
            if int(value) > limit:
                return Refusal(
                    "body_too_large", f"request body of {int(value)} bytes exceeds the limit of {limit} bytes"
                )
    return None


def declares_length(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-length" for name, _ in headers)


def limited_receive(
    receive: Callable[[], Awaitable[dict]], limit: int, refuse: Callable[[str, str], Exception]
) -> Callable[[], Awaitable[dict]]:
    """``receive`` for a body of unknown length: raises ``refuse(reason, message)`` once it passes ``limit``."""
    seen = 0

    async def limited() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise refuse("body_too_large", f"request body exceeds the limit of {limit} bytes")
        return message

    return limited


async def send_refusal(send: Any, refusal: Refusal) -> None:
    """Answer ``refusal`` from ASGI middleware, before the application (or the body) is touched."""
    body = JSONResponse(refusal.body()).body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Pure ASGI middleware: refuse a body over ``max_body_bytes`` before reading it, or as it streams in."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = body_limit_refusal(scope["headers"], self.max_body_bytes)
            if refusal is not None:
                await send_refusal(send, refusal)
                return
            if not declares_length(scope["headers"]) and scope["method"] in ("POST", "PUT", "PATCH"):
                receive = limited_receive(receive, self.max_body_bytes, Refusal)
        await self.app(scope, receive, send)


def install(app: FastAPI, max_body_bytes: int, routes: str) -> None:
    """The body limit, :class:`Refusal` answers, and FastAPI's own 404/405 in the same shape.

    ``routes`` is what a client lost on an unknown path is told, e.g. ``"GET /metrics or POST /feedback"``.
    """
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)

    # FastAPI's decorator registers each handler (add_exception_handler's own type wants Exception).
    @app.exception_handler(Refusal)
    async def refused(_: Request, exc: Refusal) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            refusal = Refusal("unknown_path", f"no route {request.url.path}; try {routes}", 404)
        elif exc.status_code == 405:
            refusal = Refusal(
                "method_not_allowed", f"{request.method} is not answered on {request.url.path}; try {routes}", 405
            )
        else:
            refusal = Refusal("http_error", str(exc.detail), exc.status_code)
        return refusal.response(headers=getattr(exc, "headers", None))


def json_content(content_type: str, what: str) -> None:
    """Refuse a body declared as anything but JSON (no ``Content-Type`` at all is read as JSON)."""
    kind = media_type(content_type)
    if kind and kind not in JSON_CONTENT_TYPES:
        raise Refusal(
            "unsupported_content_type",
            f"{what} sent as Content-Type {kind!r} is not read; send it as Content-Type: application/json",
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or one line naming the flag at fault."""
    if not 0 <= port <= 65535:
        raise BadInputError(f"--port {port}: not a TCP port; use 1-65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BadInputError(f"--bind {host}: not an address of this host ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        what = f"--port {port}" if exc.errno == errno.EADDRINUSE else f"--bind {host}"
        raise BadInputError(f"{what}: cannot listen on {host}:{port} ({exc.strerror}); pick another") from None
    sock.setblocking(False)
    return sock


class Server:
    """An application on uvicorn, on a socket bound at construction (``port`` is the one bound)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.socket = bind(host, port)
        self.host = host
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
        self._server.run(sockets=[self.socket])

    def start(self) -> Server:
        """Serve from a daemon thread; connections wait in the listening socket's queue until it accepts."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, name=f"http-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.socket.close()
