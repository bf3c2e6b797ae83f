"""The inference log: every answered prediction, written to the store off the response path.

Why here and not a KServe ``logger`` sidecar: the sidecar needs Knative Eventing or an HTTP
sink to receive its events, and it logs the client's payload (the message text) rather
than the features the model saw.  This writer produces the same CloudEvents (KServe's
``org.kubeflow.serving.inference.request`` / ``.response`` pair sharing ``id``; see
:class:`spamops.records.InferenceEvent`), with the request carrying the features as a V2
``features`` tensor (never the text) and the response the V2 outputs and model version, so
the monitor and the training ingestion read either source the same way.

The request path only appends a tuple to a bounded deque (full: the request is dropped
and counted, never blocked); nothing wakes the writer per request, which would cost a
thread switch each.  One thread per process wakes every ``DRAIN_SECONDS``, turns what
accumulated into JSON Lines and writes one object per ``batch_events`` events or
``flush_seconds``, whichever comes first, through
:mod:`spamops.registry.store` (a path, ``file://`` or ``s3://``).  Objects are named
``<YYYY-MM-DD>/<UTC time>-<host>-<pid>-<seq>.jsonl`` under the log URI, so replicas and
forked workers never write the same key.  ``close()`` (model stop, and at exit) flushes.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from prometheus_client import Counter

from spamops import names
from spamops.features import FEATURE_NAMES, LABELS
from spamops.records import CE_REQUEST, CE_RESPONSE, CE_SPECVERSION

logger = logging.getLogger("kserve.spamops")

REQUEST_ID_HEADER = names.REQUEST_ID_HEADER
DEFAULT_BATCH_EVENTS = 1000
DEFAULT_FLUSH_SECONDS = 10.0
DEFAULT_QUEUE_REQUESTS = 10_000
DRAIN_SECONDS = 0.1  # how often the writer takes what the request path queued
_MAX_PENDING_BATCHES = 20  # batches kept for retry while the store is unreachable; older ones are dropped

LOGGED = Counter(
    names.INFERENCE_LOG_PREDICTIONS_TOTAL, "Predictions written to the inference log.", [names.LABEL_MODEL_VERSION]
)
DROPPED = Counter(
    names.INFERENCE_LOG_DROPPED_TOTAL,
    "Predictions not logged: queue_full (writer behind), store_unavailable (retries exhausted), closed.",
    ["reason"],
)
BATCHES = Counter(names.INFERENCE_LOG_BATCHES_TOTAL, "Objects written to the inference log store.")
WRITE_FAILURES = Counter(names.INFERENCE_LOG_WRITE_FAILURES_TOTAL, "Failed writes of a batch (retried at next flush).")


class _RequestIds:
    """UUID-shaped ids: the first 80 bits of a version-4 UUID drawn once per process, then a 48-bit counter.

    ``uuid.uuid4()`` reads 16 bytes from the kernel per call, a few percent of a
    sub-millisecond request. Ids only need to be unique across replicas and
    restarts (feedback labels name them): a fresh random prefix per process gives
    that, and :func:`os.register_at_fork` draws a new one in every forked worker.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        head = uuid.uuid4().hex  # version 4, variant bits set
        self._prefix = f"{head[:8]}-{head[8:12]}-{head[12:16]}-{head[16:20]}-"
        self._counter = itertools.count(int(head[20:], 16) & 0xFFFF_FFFF_FFFF)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF:012x}"


_IDS = _RequestIds()


def request_id(headers: dict[str, str] | None, given: str | None = None) -> str:
    """The id a response carries: the V2 request's ``id``, else the ``x-request-id`` header, else a new one."""
    if given:
        return given
    if headers:
        value = headers.get(REQUEST_ID_HEADER)
        if value:
            return value
    return _IDS.next()


def prediction_ids(rid: str, n: int) -> list[str]:
    """What feedback labels name: the request id alone for one instance, ``<id>#<index>`` in a batch."""
    return [rid] if n == 1 else [f"{rid}#{i}" for i in range(n)]


def _flat(rows: Any) -> list[float]:
    if isinstance(rows, np.ndarray):
        return rows.astype(np.float64).ravel().tolist()
    return [float(v) for row in rows for v in row]


def _list(values: Any) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


_LABEL_ARRAY = np.array(LABELS, dtype=object)


def _labels(is_spam: Any) -> list[str]:
    if isinstance(is_spam, np.ndarray):
        return _LABEL_ARRAY[is_spam.astype(np.intp)].tolist()
    return [LABELS[1] if s else LABELS[0] for s in is_spam]


def _timestamp(at: float) -> str:
    """A Unix time as :func:`spamops.records.isoformat` writes it (to the microsecond), without a datetime."""
    seconds, micros = divmod(round(at * 1e6), 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def events(
    rid: str, at: float, model_name: str, version: str, rows: Any, probability: Any, is_spam: Any, attributes: dict
) -> list[bytes]:
    """The request and response CloudEvents (one JSON line each) of one answered request."""
    n = len(rows)
    stamp = _timestamp(at)
    base = {"specversion": CE_SPECVERSION, "id": rid, "time": stamp, "datacontenttype": "application/json"}
    request = {
        **base,
        "type": CE_REQUEST,
        **attributes,
        "data": {
            "id": rid,
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [n, len(FEATURE_NAMES)], "data": _flat(rows)}],
        },
    }
    response = {
        **base,
        "type": CE_RESPONSE,
        **attributes,
        "data": {
            "id": rid,
            "model_name": model_name,
            "model_version": version,
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [n], "data": _labels(is_spam)},
                {"name": "spam_probability", "datatype": "FP32", "shape": [n], "data": _list(probability)},
            ],
        },
    }
    return [orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY), orjson.dumps(response)]


class InferenceLog:
    """Batches of logged predictions written to ``uri`` by one background thread per process."""

    def __init__(
        self,
        uri: str,
        model_name: str,
        *,
        batch_events: int = DEFAULT_BATCH_EVENTS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        queue_requests: int = DEFAULT_QUEUE_REQUESTS,
        source: str | None = None,
    ) -> None:
        if batch_events < 2:
            raise ValueError("--inference-log-batch-events must be at least 2 (a request and its response)")
        if flush_seconds <= 0:
            raise ValueError("--inference-log-flush-seconds must be > 0")
        if queue_requests < 1:
            raise ValueError("--inference-log-queue-requests must be >= 1")
        from spamops.registry.store import open_store

        self.uri = uri
        self.store = open_store(uri)  # a bad scheme fails here, at start-up
        self.model_name = model_name
        self.batch_events = batch_events
        self.flush_seconds = flush_seconds
        self.queue_requests = queue_requests
        host = socket.gethostname()
        self.host = host.replace("/", "_")
        self.attributes = {
            "source": source or f"urn:spamops:predictor:{host}",
            "inferenceservicename": os.environ.get(names.INFERENCE_SERVICE_ENV) or model_name,
            "namespace": os.environ.get(names.POD_NAMESPACE_ENV, ""),
            "component": "predictor",
            "endpoint": os.environ.get(names.ENDPOINT_ENV, ""),
        }
        self._pid: int | None = None
        self._queue: collections.deque = collections.deque()  # each process' own, made anew by _start
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False

    # -- request path ---------------------------------------------------------
    def record(self, rid: str, version: str, rows: Sequence | np.ndarray, probability: Any, is_spam: Any) -> None:
        """Queue one answered request; never blocks (a full queue drops the request and counts it)."""
        if self._pid != os.getpid():
            self._start()
        elif self._closed:  # answered while shutting down, after the last flush
            DROPPED.labels("closed").inc(len(rows))
            return
        if len(self._queue) >= self.queue_requests:
            DROPPED.labels("queue_full").inc(len(rows))
            return
        self._queue.append((rid, time.time(), version, rows, probability, is_spam))  # atomic, wakes nobody

    # -- writer ---------------------------------------------------------------
    def _start(self) -> None:
        """Start this process' writer (threads do not survive ``fork``: each worker starts its own)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = collections.deque()
            self._stop = threading.Event()
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="spamops-inference-log", daemon=True)
            self._pid = os.getpid()
            self._thread.start()
            atexit.register(self.close)

    def _run(self) -> None:
        lines: list[bytes] = []
        versions: dict[str, int] = {}
        pending: list[tuple[bytes, dict[str, int]]] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            stopping = self._stop.wait(DRAIN_SECONDS)
            cut = False
            while self._queue:
                rid, at, version, rows, probability, is_spam = self._queue.popleft()
                try:
                    lines += events(rid, at, self.model_name, version, rows, probability, is_spam, self.attributes)
                    versions[version] = versions.get(version, 0) + len(rows)
                except Exception:  # noqa: BLE001 - one unserialisable entry must not stop the log
                    logger.exception("inference log: could not serialise request %s", rid)
                if len(lines) >= self.batch_events:
                    pending.append((b"\n".join(lines) + b"\n", versions))
                    lines, versions, cut = [], {}, True
            due = time.monotonic() >= deadline
            if lines and (due or stopping):
                pending.append((b"\n".join(lines) + b"\n", versions))
                lines, versions = [], {}
            if pending and (cut or due or stopping):
                pending = self._write(pending)
            if due:
                deadline = time.monotonic() + self.flush_seconds
            if stopping:
                for _, counts in pending:
                    DROPPED.labels("store_unavailable").inc(sum(counts.values()))
                return

    def _write(self, pending: list[tuple[bytes, dict[str, int]]]) -> list[tuple[bytes, dict[str, int]]]:
        """Write the pending batches in order; what could not be written is kept (the oldest beyond a bound dropped)."""
        while pending:
            body, counts = pending[0]
            key = self._key()
            try:
                self.store.put(key, body, if_absent=True)
            except Exception as exc:  # noqa: BLE001 - the store is away: keep the batch, retry at the next flush
                WRITE_FAILURES.inc()
                logger.warning("inference log: writing %s failed (%s); will retry", self.store.uri(key), exc)
                while len(pending) > _MAX_PENDING_BATCHES:
                    _, lost = pending.pop(0)
                    DROPPED.labels("store_unavailable").inc(sum(lost.values()))
                return pending
            pending.pop(0)
            BATCHES.inc()
            for version, n in counts.items():
                LOGGED.labels(version).inc(n)
        return pending

    def _key(self) -> str:
        now = datetime.now(UTC)
        self._seq += 1
        return f"{now:%Y-%m-%d}/{now:%Y%m%dT%H%M%S%fZ}-{self.host}-{os.getpid()}-{self._seq:06d}.jsonl"

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued and stop the writer (on model stop and at exit; idempotent)."""
        if self._thread is None or self._pid != os.getpid() or self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("inference log: the writer did not finish within %.0fs; queued predictions are lost", timeout)


# -- settings: flags of ``python -m spamops.serving``, defaulting to environment variables ------
ENV = {
    "uri": names.INFERENCE_LOG_URI_ENV,
    "batch_events": names.INFERENCE_LOG_BATCH_EVENTS_ENV,
    "flush_seconds": names.INFERENCE_LOG_FLUSH_SECONDS_ENV,
    "queue_requests": names.INFERENCE_LOG_QUEUE_REQUESTS_ENV,
}


def add_arguments(parser: Any) -> None:
    """The inference-log flags; each defaults to its environment variable (how the chart sets them)."""
    env = os.environ.get
    parser.add_argument(
        "--inference_log_uri",
        "--inference-log-uri",
        default=env(ENV["uri"]) or None,
        help=f"write every prediction to this store URI (path, file://, s3://); off when empty (${ENV['uri']})",
    )
    parser.add_argument(
        "--inference_log_batch_events",
        "--inference-log-batch-events",
        type=int,
        default=env(ENV["batch_events"]) or str(DEFAULT_BATCH_EVENTS),  # argparse applies type= to it
        help=f"CloudEvents per stored object (two per request) (${ENV['batch_events']})",
    )
    parser.add_argument(
        "--inference_log_flush_seconds",
        "--inference-log-flush-seconds",
        type=float,
        default=env(ENV["flush_seconds"]) or str(DEFAULT_FLUSH_SECONDS),
        help=f"longest a logged prediction waits before its batch is written (${ENV['flush_seconds']})",
    )
    parser.add_argument(
        "--inference_log_queue_requests",
        "--inference-log-queue-requests",
        type=int,
        default=env(ENV["queue_requests"]) or str(DEFAULT_QUEUE_REQUESTS),
        help=f"requests waiting for the writer before new ones are dropped and counted (${ENV['queue_requests']})",
    )


def from_args(args: Any) -> InferenceLog | None:
    """The log the flags ask for (``None`` when off); ``ValueError`` on bad values."""
    if not args.inference_log_uri:
        return None
    return InferenceLog(
        args.inference_log_uri,
        args.model_name,
        batch_events=args.inference_log_batch_events,
        flush_seconds=args.inference_log_flush_seconds,
        queue_requests=args.inference_log_queue_requests,
    )
