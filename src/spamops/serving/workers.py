"""Serve on sockets we bind ourselves: on the address asked for, and from N processes sharing one loaded model.

Why not KServe's own: its ``RESTServer`` binds ``0.0.0.0`` unconditionally, and
its ``--workers N`` mode *spawns* fresh interpreters that import a fresh FastAPI
app (without our body limit, handlers and routes) and unpickle the model into
each, so every worker would hold its own copy of the decision table.

Here the parent verifies the model and builds the table once, then forks: the
workers share those pages copy-on-write (``gc.freeze()`` before the fork keeps
the collector from touching them).  Each worker listens on its own
``SO_REUSEPORT`` socket bound to the same port, so the kernel spreads
connections across workers evenly; with one shared socket, the first worker to
wake would accept a whole burst of new connections by itself.  The parent only
forwards SIGTERM/SIGINT and waits; when a worker dies it stops the others and
exits 1, so Kubernetes restarts the pod instead of serving at partial capacity.

Prometheus metrics are per process: with ``--workers N`` each scrape of
``/metrics`` reads the worker that accepted it (docs/serving.md says so).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import kserve.model_server as kserve_model_server
from kserve.protocol.rest.server import RESTServer

logger = logging.getLogger("kserve.spamops")

BACKLOG = 2048  # uvicorn's default


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket listening on ``host:port`` (``port`` 0 picks a free one), small responses sent at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Accepted connections inherit it. uvloop sets it only on sockets it binds itself; without it
    # Nagle's algorithm meets the client's delayed ACK and every small response waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def serve_rest_on(sock: socket.socket, on_app: Callable[[Any], None] | None = None) -> None:
    """Make KServe's ``ModelServer.start`` run its REST server on ``sock`` instead of binding 0.0.0.0 itself.

    ``ModelServer.start`` builds its ``RESTServer`` by the name it imported; a
    subclass under that name that hands uvicorn our socket changes nothing else
    (same app, middlewares, handlers, event loop and signal handling).
    ``on_app`` runs once KServe has created the application (its handlers installed).
    """

    class BoundRESTServer(RESTServer):
        async def start(self) -> None:
            self.create_application()
            if on_app is not None:
                on_app(kserve_model_server.app)
            await self._server.serve(sockets=[sock])

    kserve_model_server.RESTServer = BoundRESTServer


def run(start: Callable[[socket.socket], None], host: str, port: int, workers: int) -> int:
    """Bind, then run ``start(sock)`` here (one worker) or in ``workers`` forked processes; the exit code."""
    if workers == 1:
        start(listening_socket(host, port, reuse_port=False))
        return 0
    first = listening_socket(host, port, reuse_port=True)
    sockets = [first] + [listening_socket(host, first.getsockname()[1], reuse_port=True) for _ in range(workers - 1)]
    children: dict[int, int] = {}
    for index, sock in enumerate(sockets):
        pid = os.fork()
        if pid == 0:  # the worker: keep only its own socket
            for other in sockets:
                if other is not sock:
                    other.close()
            code = 0
            try:
                start(sock)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's loop
                logger.exception("worker %d failed", index)
                code = 1
            os._exit(code)
        children[pid] = index
    for sock in sockets:
        sock.close()  # the workers hold them; a dead worker's socket must leave the port group
    logger.info("serving with %d worker processes %s on %s:%d", workers, sorted(children), host, port)
    return _supervise(children)


def _supervise(children: dict[int, int]) -> int:
    """Forward stop signals to the workers and wait; one dead worker stops the rest (exit 1)."""
    stopping = False

    def signal_all(sig: int) -> None:
        for pid in children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def on_signal(sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        signal_all(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    exit_code = 0
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if not stopping and index is not None:
            logger.error("worker %d (pid %d) exited with %d; stopping the others", index, pid, code)
            stopping = True
            exit_code = 1
            signal_all(signal.SIGTERM)
    return exit_code
