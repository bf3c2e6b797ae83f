"""N processes sharing one loaded model, each serving on its own socket of the same port.

Why not KServe's own ``--workers N`` mode: it *spawns* fresh interpreters that
import a fresh FastAPI app (without our body limit, handlers and routes) and
unpickle the model into each, so every worker would hold its own copy of the
decision table.

Here the parent verifies the model and builds the table once, then forks: the
workers share those pages copy-on-write (``gc.freeze()`` before the fork keeps
the collector from touching them).  Each worker serves on its own
``SO_REUSEPORT`` socket bound to the same port (:func:`spamops.serving.server.bind`
binds them all before the model loads), so the kernel spreads connections
across workers evenly; with one shared socket, the first worker to wake would
accept a whole burst of new connections by itself.  The parent only forwards
SIGTERM/SIGINT and waits; when a worker dies it stops the others and exits 1,
so Kubernetes restarts the pod instead of serving at partial capacity.

Prometheus metrics are per process: with ``--workers N`` each scrape of
``/metrics`` reads the worker that accepted it (docs/serving.md says so).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence

logger = logging.getLogger("kserve.spamops")


def run(start: Callable[[socket.socket], None], sockets: Sequence[socket.socket], host: str, port: int) -> int:
    """Run ``start(sock)`` here (one socket) or in one forked process per socket; the exit code."""
    if len(sockets) == 1:
        start(sockets[0])
        return 0
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
    logger.info("serving with %d worker processes %s on %s:%d", len(sockets), sorted(children), host, port)
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
