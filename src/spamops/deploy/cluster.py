"""The Kubernetes API as rollouts use it: one InferenceService, its Events, its Lease, its HTTPRoute.

Every failure becomes one line naming the object and what to do, with a stable
exit code: a missing or broken kubeconfig is bad input (2); an unreachable API
server, a refusal or a lost race is retryable (1).  Updates are JSON merge
patches carrying the ``resourceVersion`` that was read (custom resources do not
support strategic merge patch); :meth:`Cluster.update` re-reads and retries on
a conflict, so a concurrent edit is never overwritten blindly.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spamops.errors import BadInputError, ConflictError, NotFoundError, SpamopsError

KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")
FIELD_MANAGER = "spamops-rollout"
TIMEOUT = (3.0, 30.0)  # connect, read: a dead API server is reported in seconds, not minutes
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class Target:
    """Which InferenceService to drive, and how to reach the API server."""

    name: str = "spam"
    namespace: str = "spamops"
    kubeconfig: str | None = None  # None: in-cluster service account, else $KUBECONFIG / ~/.kube/config
    context: str | None = None

    @property
    def where(self) -> str:
        return f"inferenceservice {self.namespace}/{self.name}"


def api_client(kubeconfig_flag: str | None = None, context: str | None = None):
    """An API client from ``--kubeconfig`` (else ``$KUBECONFIG``, the in-cluster account, ``~/.kube/config``).

    A missing or broken kubeconfig is a :class:`BadInputError` naming the file; requests made
    with :data:`TIMEOUT` and :func:`unreachable` report a dead API server in one line.
    """
    from kubernetes import client, config

    kubeconfig = kubeconfig_flag or os.environ.get("KUBECONFIG") or None
    if kubeconfig is None and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException as exc:
            raise BadInputError(f"in-cluster service account: {exc}; pass --kubeconfig FILE") from None
    path = Path(kubeconfig.split(os.pathsep)[0] if kubeconfig else "~/.kube/config").expanduser()
    if not path.is_file():
        hint = "--kubeconfig" if kubeconfig_flag else ("$KUBECONFIG" if kubeconfig else "~/.kube/config")
        raise BadInputError(
            f"kubeconfig {path} ({hint}) does not exist; pass --kubeconfig FILE, set KUBECONFIG, "
            "or run inside the cluster"
        )
    import yaml

    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=str(path), context=context, client_configuration=configuration)
    except (config.ConfigException, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"kubeconfig {path}: cannot use it ({first}); check the file and --context") from None
    configuration.retries = 0  # urllib3's default 3 retries turn a dead API server into a long hang
    return client.ApiClient(configuration)


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a request raises when the API server cannot be reached (urllib3's MaxRetryError is no OSError)."""
    from urllib3.exceptions import HTTPError

    return (HTTPError, OSError)


def unreachable(server: str, exc: BaseException) -> SpamopsError:
    """One line for a transport failure (refused, timed out, TLS): retryable, naming the server."""
    cause = getattr(exc, "reason", None) or exc
    text = str(cause).split(": ", 1)[-1] if ": " in str(cause) else str(cause)
    return SpamopsError(
        f"API server {server} unreachable ({text.strip() or type(cause).__name__}); "
        "check --kubeconfig/--context and that the cluster is up"
    )


class Cluster:
    """The API calls a rollout makes, each mapped to one clear error."""

    def __init__(self, target: Target) -> None:
        from kubernetes import client

        self.target = target
        self._client = api_client(target.kubeconfig, target.context)
        self.custom = client.CustomObjectsApi(self._client)
        self.core = client.CoreV1Api(self._client)
        self.coordination = client.CoordinationV1Api(self._client)

    @property
    def server(self) -> str:
        return self._client.configuration.host

    def call(self, where: str, what: str, fn: Callable, *args, **kwargs):
        """Run one API call; translate its failure into a :class:`SpamopsError` naming ``where``."""
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(f"{where}: not found; deploy the chart or manifests first") from None
            if exc.status == 409:
                raise ConflictError(
                    f"{where}: changed while we {what}; re-run to apply on top of the new state"
                ) from None
            if exc.status in (401, 403):
                raise SpamopsError(
                    f"{where}: the API server refused to let us {what} ({exc.status} {exc.reason}); "
                    "check the identity's RBAC (docs/kubernetes.md)"
                ) from None
            if exc.status in (400, 422):
                raise BadInputError(f"{where}: the API server rejected the change: {_reason(exc)}") from None
            raise SpamopsError(f"{where}: cannot {what}: {exc.status} {exc.reason}") from None
        except transport_errors() as exc:  # MaxRetryError, NewConnectionError, timeouts
            raise unreachable(self.server, exc) from None

    # -- InferenceService -------------------------------------------------
    def read_isvc(self) -> dict:
        t = self.target
        return self.call(
            t.where, "read it", self.custom.get_namespaced_custom_object, *KSERVE[:2], t.namespace, KSERVE[2], t.name
        )

    def patch_isvc(self, body: dict, what: str) -> dict:
        t = self.target
        return self.call(
            t.where,
            what,
            self.custom.patch_namespaced_custom_object,
            *KSERVE[:2],
            t.namespace,
            KSERVE[2],
            t.name,
            body,
            field_manager=FIELD_MANAGER,
        )

    def update(self, change: Callable[[dict], dict | None], what: str) -> dict:
        """Read, let ``change`` compute a merge patch from the fresh object, patch with its
        ``resourceVersion``; on a conflict read again.  ``change`` returning ``None`` = nothing to do."""
        for _ in range(CONFLICT_RETRIES):
            isvc = self.read_isvc()
            body = change(isvc)
            if body is None:
                return isvc
            body.setdefault("metadata", {})["resourceVersion"] = isvc["metadata"]["resourceVersion"]
            try:
                return self.patch_isvc(body, what)
            except ConflictError:
                continue
        raise ConflictError(f"{self.target.where}: changed {CONFLICT_RETRIES} times while we {what}; re-run")

    # -- HTTPRoute (Standard mode) ----------------------------------------
    def read_route(self, name: str) -> dict | None:
        where = f"httproute {self.target.namespace}/{name}"
        try:
            return self.call(
                where,
                "read it",
                self.custom.get_namespaced_custom_object,
                *HTTPROUTE[:2],
                self.target.namespace,
                HTTPROUTE[2],
                name,
            )
        except NotFoundError:
            return None

    def apply_route(self, route: dict) -> dict:
        """Create the route, or merge-patch it at the version read (retried on a conflict)."""
        name = route["metadata"]["name"]
        where = f"httproute {self.target.namespace}/{name}"
        args = (*HTTPROUTE[:2], self.target.namespace, HTTPROUTE[2])
        for _ in range(CONFLICT_RETRIES):
            live = self.read_route(name)
            try:
                if live is None:
                    return self.call(
                        where,
                        "create it",
                        self.custom.create_namespaced_custom_object,
                        *args,
                        route,
                        field_manager=FIELD_MANAGER,
                    )
                body = {
                    **route,
                    "metadata": {**route["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]},
                }
                return self.call(
                    where,
                    "update it",
                    self.custom.patch_namespaced_custom_object,
                    *args,
                    name,
                    body,
                    field_manager=FIELD_MANAGER,
                )
            except ConflictError:
                continue
        raise ConflictError(f"{where}: changed {CONFLICT_RETRIES} times while we updated it; re-run")

    # -- Events -----------------------------------------------------------
    def event(self, isvc: dict, reason: str, message: str, *, warning: bool = False) -> None:
        """A core/v1 Event on the InferenceService (``kubectl describe isvc`` and Argo CD show it)."""
        from kubernetes import client

        now = datetime.now(UTC)
        md = isvc["metadata"]
        body = client.CoreV1Event(
            # hex nanoseconds: unique, and sorted like the decisions (timestamps have 1 s resolution)
            metadata=client.V1ObjectMeta(
                name=f"{md['name']}.{time.time_ns():016x}{uuid.uuid4().hex[:4]}", namespace=md["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=isvc["apiVersion"],
                kind=isvc["kind"],
                name=md["name"],
                namespace=md["namespace"],
                uid=md.get("uid"),
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component=FIELD_MANAGER),
            reporting_component=FIELD_MANAGER,
            reporting_instance=os.environ.get("HOSTNAME", "spamops"),
            action="Rollout",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        self.call(
            f"events in {md['namespace']}", "record an event", self.core.create_namespaced_event, md["namespace"], body
        )

    def events(self) -> list[dict]:
        """Our Events on the InferenceService, oldest first."""
        t = self.target
        found = self.call(
            f"events in {t.namespace}",
            "list events",
            self.core.list_namespaced_event,
            t.namespace,
            field_selector=f"involvedObject.name={t.name},involvedObject.kind=InferenceService",
        )
        items = [e for e in found.items if e.source and e.source.component == FIELD_MANAGER]
        items.sort(key=lambda e: (e.first_timestamp or e.metadata.creation_timestamp, e.metadata.name))
        return [{"reason": e.reason, "message": e.message, "type": e.type} for e in items]


def _reason(exc) -> str:
    import json

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError):
        return str(exc.reason)
