"""The predictor's server start-up, in one place: bind first, then (the caller) load, then serve on KServe.

Order, so that a start-up that cannot work says so before anything is pulled
or unpickled: :func:`bind` takes the HTTP address (one socket, or one per
worker) and checks the gRPC port; a port out of range, an address in use or one
that is not this machine's is one :class:`BindError` naming the flag (exit 2).
Only then does ``__main__`` pull and load the model, and :func:`serve` runs
KServe's servers on the sockets bound here (forking with ``--workers`` > 1,
:mod:`spamops.serving.workers`).

How it sits on KServe (0.20 and 0.21; ``make test-serving-compat`` runs the
serving suite on both), by KServe's own extension points:

* **The application** is KServe's ``kserve.model_server.app``, the FastAPI app
  its REST server serves; KServe's custom-predictor examples add middleware to
  it the same way.  Our guard, handlers and routes are added to it before the
  server starts (:func:`spamops.serving.http.install`).
* :class:`BoundRESTServer` **subclasses** KServe's ``RESTServer``: its
  ``create_application`` runs KServe's, then takes back the two error handlers
  KServe's replaces; its ``start`` serves on our socket instead of binding
  ``0.0.0.0`` itself.
* :class:`PredictorServer` **subclasses** ``ModelServer`` and adds
  :meth:`~PredictorServer.serve_on`: what ``ModelServer.start`` does for one
  process (REST, gRPC, event loop, signal handlers), with our REST server.
  KServe's ``start`` names its ``RESTServer`` class inside its body, so there is
  no way to hand it ours short of replacing the module global, which is what
  this replaces.

Three private attributes are still used, because KServe offers no public way:
``RESTServer._server`` (the uvicorn server, whose ``serve(sockets=...)`` takes a
bound socket), and ``ModelServer._rest_server``/``_grpc_server``, which
KServe's own ``stop`` reads to shut the servers down on SIGTERM.
:func:`check_kserve` checks them when a server is built and fails loudly, naming
the KServe version, should an upgrade move one;
``tests/serving/test_serving_kserve.py`` runs it on every version tested.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import socket
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from types import CodeType
from typing import Any

import kserve.model_server as kserve_model_server
import uvicorn
from kserve import Model, ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from spamops.errors import BadInputError
from spamops.serving.settings import ServingSettings

logger = logging.getLogger("kserve.spamops")

BACKLOG = 2048  # uvicorn's default
TLS_FLAGS = ("ssl_certfile", "ssl_keyfile")  # KServe >= 0.21 only: passed on when its parser has them


class BindError(BadInputError):
    """An address the predictor cannot listen on: the flag at fault and what to do (exit 2)."""


class KServeIncompatible(RuntimeError):
    """The installed KServe moved something this module relies on (see the module docstring)."""


def check_kserve() -> None:
    """Fail loudly, naming the installed KServe, if an attribute start-up relies on has moved."""
    problems = []
    registry = ModelRepository()
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING, DataPlane(registry), ModelRepositoryExtension(registry), 0
    )  # unstarted
    if not isinstance(getattr(rest, "_server", None), uvicorn.Server):
        problems.append("RESTServer._server is no longer the uvicorn.Server it serves with")
    for name in ("create_application", "start"):
        if not callable(getattr(RESTServer, name, None)):
            problems.append(f"RESTServer.{name} is gone")
    if "_grpc_server" not in _names(ModelServer.stop.__code__):
        problems.append("ModelServer.stop no longer stops self._grpc_server")
    for name in ("setup_event_loop", "register_signal_handler", "register_model"):
        if not callable(getattr(ModelServer, name, None)):
            problems.append(f"ModelServer.{name} is gone")
    if not hasattr(kserve_model_server, "app"):
        problems.append("kserve.model_server.app (the FastAPI app RESTServer serves) is gone")
    if problems:
        raise KServeIncompatible(
            f"kserve {installed_version('kserve')} is not supported by spamops.serving.server: " + "; ".join(problems)
        )


def _names(code: CodeType) -> set[str]:
    """Attribute and global names a function's code (and the functions it defines) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


# -- binding -------------------------------------------------------------------------------


def _check_port(flag: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise BindError(f"{flag} {port}: not a TCP port; use 1-65535 (or 0 for any free port)")


def _socket(host: str, port: int, *, reuse_port: bool, flag: str, port_flag: str) -> socket.socket:
    """A TCP socket bound to ``host:port``; a failure is a :class:`BindError` naming the flag at fault."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise BindError(f"{flag} {host}: not an IP address or host name of this machine ({exc})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # [::] is every address, as gRPC's
        sock.bind(address)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}" if family != socket.AF_INET6 else f"[{host}]:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"{port_flag} {port}: {where} is already in use (another predictor?); stop it or choose another port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise BindError(
                f"{flag} {host}: not an address of this machine; use one of its addresses, 127.0.0.1 or 0.0.0.0"
            ) from None
        if exc.errno == errno.EACCES:
            raise BindError(f"{port_flag} {port}: permission denied on {where}; use a port above 1023") from None
        raise BindError(f"{flag} {host} {port_flag} {port}: cannot listen on {where}: {exc.strerror}") from None
    # Accepted connections inherit it. uvloop sets it only on sockets it binds itself; without it
    # Nagle's algorithm meets the client's delayed ACK and every small response waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listening_socket(
    host: str, port: int, *, reuse_port: bool, flag: str = "--bind", port_flag: str = "--http_port"
) -> socket.socket:
    """A TCP socket listening on ``host:port`` (``port`` 0 picks a free one), small responses sent at once."""
    sock = _socket(host, port, reuse_port=reuse_port, flag=flag, port_flag=port_flag)
    sock.listen(BACKLOG)
    return sock


@dataclass
class Listeners:
    """What :func:`bind` took: one listening HTTP socket per worker, all on ``port``."""

    sockets: list[socket.socket]
    host: str
    port: int

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def bind(host: str, http_port: int, workers: int, grpc_port: int | None) -> Listeners:
    """Listen on ``host:http_port`` (one socket per worker) and check ``grpc_port``; before any model is loaded.

    With several workers each gets its own ``SO_REUSEPORT`` socket, and the port
    is first taken by a plain socket: a port another process holds with
    ``SO_REUSEPORT`` (a second predictor with ``--workers``) would otherwise be
    silently shared.  The gRPC port is checked the same way (gRPC binds it
    itself, on every address, when the server starts).
    """
    _check_port("--http_port", http_port)
    if grpc_port is not None:
        _check_port("--grpc_port", grpc_port)
    if workers == 1:
        sockets = [listening_socket(host, http_port, reuse_port=False)]
    else:
        probe = _socket(host, http_port, reuse_port=False, flag="--bind", port_flag="--http_port")
        port = probe.getsockname()[1]
        probe.close()
        sockets = [listening_socket(host, port, reuse_port=True) for _ in range(workers)]
    listeners = Listeners(sockets, host, sockets[0].getsockname()[1])
    if grpc_port is not None:
        try:
            _socket(_grpc_host(), grpc_port, reuse_port=False, flag="--grpc_port", port_flag="--grpc_port").close()
        except BindError:
            listeners.close()
            raise
    return listeners


def _grpc_host() -> str:
    """Where KServe's gRPC server listens: ``[::]`` (every address, IPv4 too), or 0.0.0.0 without IPv6."""
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return "0.0.0.0"  # noqa: S104 - gRPC's own address, checked only
    return "::"


# -- KServe ----------------------------------------------------------------------------------


class BoundRESTServer(RESTServer):
    """KServe's REST server on a socket bound by :func:`bind`, with our error handlers kept."""

    def __init__(self, sock: socket.socket, registry: ModelRepository, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sock = sock
        self.registry = registry

    def create_application(self) -> None:
        """KServe's, then take back the handlers it replaces with its own (503 with the reason, our 400s)."""
        from spamops.serving import http

        super().create_application()
        http.claim_error_handlers(kserve_model_server.app, self.registry)

    async def start(self) -> None:
        self.create_application()
        await self._server.serve(sockets=[self.sock])


class PredictorServer(ModelServer):
    """KServe's ``ModelServer`` built from our flags, serving one process on a socket of ours."""

    def __init__(self, args: argparse.Namespace) -> None:
        check_kserve()
        self.args = args
        super().__init__(
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            workers=1,  # each of our worker processes runs KServe's single-process server
            max_threads=args.max_threads,
            max_asyncio_workers=args.max_asyncio_workers,
            enable_grpc=args.enable_grpc,
            enable_docs_url=args.enable_docs_url,
            enable_latency_logging=args.enable_latency_logging,
            access_log_format=args.access_log_format,
            event_loop=args.event_loop,
            timeout_keep_alive=args.timeout_keep_alive,
            **self._tls(),
        )

    def _tls(self) -> dict[str, Any]:
        return {name: getattr(self.args, name) for name in TLS_FLAGS if hasattr(self.args, name)}

    def serve_on(self, sock: socket.socket) -> None:
        """Run REST (on ``sock``) and gRPC until a stop signal: ``ModelServer.start`` for one process."""
        self._rest_server = BoundRESTServer(
            sock,
            self.registered_models,
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            **self._tls(),
        )
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = GRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(self.args),
                grace_period=self.grace_period,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()

        async def run_all() -> None:
            await asyncio.gather(*self.servers)

        asyncio.run(run_all())


def serve(server: PredictorServer, model: Model, listeners: Listeners, settings: ServingSettings) -> int:
    """Serve ``model`` on the bound ``listeners`` with our guard, handlers and routes; the exit code.

    Everything is built before :func:`spamops.serving.workers.run` forks (with
    ``--workers`` > 1), so the workers share one verified model and one decision table.
    """
    from spamops.serving import http, openapi, shadow, workers

    app = kserve_model_server.app
    http.install(app, server.registered_models, settings.max_body_bytes)
    shadow.add_route(app, server.registered_models)
    openapi.document(app, settings, server.registered_models)
    server.model_repository_extension = http.ReadOnlyRepository(server.registered_models)  # gRPC load/unload
    # Registered even when not ready: KServe would refuse to start without a ready model,
    # and a process that exits on a bad artifact crash-loops; a not-ready one says 503 and why.
    server.register_model(model)
    model.enable_latency_logging = server.enable_latency_logging
    # Everything allocated so far (KServe, FastAPI, scikit-learn, the model) lives until exit:
    # moving it out of the collector's generations keeps full collections, and so tail latency, short,
    # and keeps forked workers from writing to (and so copying) the pages they share.
    gc.collect()
    gc.freeze()
    return workers.run(server.serve_on, listeners.sockets, listeners.host, listeners.port)
