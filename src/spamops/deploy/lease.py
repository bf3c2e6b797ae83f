"""One rollout per InferenceService at a time: a ``coordination.k8s.io`` Lease named after it.

A second ``spamops rollout auto`` (or a ``start``/``promote``/``abort`` racing
it) fails fast naming the holder instead of interleaving its patches.  The
lease expires ``duration`` seconds after the holder's last renewal, so a killed
loop does not block the next rollout for ever.  Create and update are
optimistic (``resourceVersion``): two takers cannot both win.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from spamops.deploy.cluster import Cluster
from spamops.errors import ConflictError, NotFoundError, SpamopsError


class LeaseHeldError(SpamopsError):
    """Another rollout holds the InferenceService's lease."""


def holder_identity() -> str:
    """Who we are, as ``kubectl get lease`` shows it: host/pod name, pid, a random suffix."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Lease:
    """Take, renew and release the rollout lease of ``cluster.target``."""

    def __init__(self, cluster: Cluster, *, duration: int, identity: str | None = None) -> None:
        self.cluster = cluster
        self.duration = duration
        self.identity = identity or holder_identity()
        self.name = f"spamops-rollout-{cluster.target.name}"
        self._where = f"lease {cluster.target.namespace}/{self.name}"

    def _read(self):
        try:
            return self.cluster.call(
                self._where,
                "read it",
                self.cluster.coordination.read_namespaced_lease,
                self.name,
                self.cluster.target.namespace,
            )
        except NotFoundError:
            return None

    def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeldError` naming the live holder."""
        from kubernetes import client

        now = datetime.now(UTC)
        live = self._read()
        spec = client.V1LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=self.duration, acquire_time=now, renew_time=now
        )
        ns = self.cluster.target.namespace
        if live is None:
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=ns), spec=spec)
            try:
                self.cluster.call(self._where, "take it", self.cluster.coordination.create_namespaced_lease, ns, body)
                return
            except ConflictError:
                live = self._read()
            except SpamopsError as exc:
                if "already exists" not in str(exc) and "AlreadyExists" not in str(exc):
                    raise
                live = self._read()
        if live is not None and self._held_by_other(live, now):
            self._refuse(live)
        if live is None:
            raise LeaseHeldError(f"{self._where}: taken and released while we tried; re-run")
        live.spec = spec
        live.spec.lease_transitions = ((live.spec.lease_transitions or 0) + 1) if live.spec else 1
        try:
            self.cluster.call(
                self._where, "take it", self.cluster.coordination.replace_namespaced_lease, self.name, ns, live
            )
        except ConflictError:
            fresh = self._read()
            if fresh is not None:
                self._refuse(fresh)
            raise

    def _held_by_other(self, live, now: datetime) -> bool:
        spec = live.spec
        if spec is None or not spec.holder_identity or spec.holder_identity == self.identity:
            return False
        renewed = spec.renew_time or spec.acquire_time
        return renewed is not None and renewed + timedelta(seconds=spec.lease_duration_seconds or 0) > now

    def _refuse(self, live) -> None:
        spec = live.spec
        raise LeaseHeldError(
            f"{self.cluster.target.where}: another rollout holds {self._where} "
            f"(holder {spec.holder_identity}, renewed {spec.renew_time.isoformat() if spec.renew_time else '?'}, "
            f"expires after {spec.lease_duration_seconds}s); wait for it to finish or run 'spamops rollout abort'"
        )

    def renew(self) -> None:
        """Push the expiry forward; lost to someone else = :class:`LeaseHeldError`."""
        live = self._read()
        if live is None or live.spec is None or live.spec.holder_identity != self.identity:
            if live is not None and live.spec is not None and live.spec.holder_identity:
                self._refuse(live)
            raise LeaseHeldError(f"{self._where}: our lease disappeared; another rollout may have started")
        live.spec.renew_time = datetime.now(UTC)
        self.cluster.call(
            self._where,
            "renew it",
            self.cluster.coordination.replace_namespaced_lease,
            self.name,
            self.cluster.target.namespace,
            live,
        )

    def release(self) -> None:
        """Give the lease up (clear the holder) if it is still ours."""
        live = self._read()
        if live is None or live.spec is None or live.spec.holder_identity != self.identity:
            return
        live.spec.holder_identity = None
        live.spec.renew_time = None
        try:
            self.cluster.call(
                self._where,
                "release it",
                self.cluster.coordination.replace_namespaced_lease,
                self.name,
                self.cluster.target.namespace,
                live,
            )
        except SpamopsError:
            pass  # it expires by itself

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
