"""What the data-plane STAND-IN reads from the test cluster: the split the cluster currently declares.

The traffic driver (tests/deploy/deployhelpers.py) stands in for the data plane -
the Gateway in Standard mode, Knative's activator/queue-proxy in Serverless mode -
which cannot run here.  This is its routing table, refreshed from the API server
twice a second, the way a gateway follows its configuration:

* **Standard**: the weighted ``backendRefs`` of spamops' HTTPRoute
  (``{isvc}-spamops-canary``; before any rollout, the stable predictor Service at
  100 %); each Service resolves, through its selector, to the *Ready* pods the
  real Deployment controller and KWOK made, and the ``STORAGE_URI`` of the
  ReplicaSet each was made from names the version (KServe's pod webhook rewrites
  the pod's own to the mount path).  A Service with no Ready pod is a backend with no endpoint: 503.
* **Serverless**: ``status.components.predictor.traffic`` of the
  InferenceService, which the real KServe manager writes from the Knative
  Service status (written by :mod:`knative_standin`); each revision resolves to
  the template it was cut from.

A version is its store folder (``…/spam/<version>/``), so the driver can send the
request to the real predictor process serving that version.
"""

from __future__ import annotations

import threading
from pathlib import Path

from deployhelpers import Backend
from knative_standin import KnativeStandIn

KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")


def version_of(uri: str | None) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] if uri else "unknown"


def storage_uri(pod_spec: dict) -> str | None:
    for container in pod_spec.get("containers") or []:
        if container.get("name") == "kserve-container":
            return {e.get("name"): e.get("value") for e in container.get("env") or []}.get("STORAGE_URI")
    return None


def _env_uri(containers) -> str | None:
    for c in containers or []:
        if c.name == "kserve-container":
            return next((e.value for e in c.env or [] if e.name == "STORAGE_URI"), None)
    return None


class DeclaredRoutes:
    """``routes()`` for the traffic driver: the cluster's declared split, as :class:`Backend` weights."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        isvc: str = "spam",
        *,
        knative: KnativeStandIn | None = None,
        period: float = 0.5,
    ) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(kubeconfig))
        self.custom, self.core, self.apps = client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api)
        self.namespace, self.isvc, self.knative, self.period = namespace, isvc, knative, period
        self.current: list[Backend] = []
        self.error: str | None = None
        self._stop = threading.Event()

    def routes(self) -> list[Backend]:
        return self.current

    def start(self) -> DeclaredRoutes:
        self.refresh()
        threading.Thread(target=self._loop, daemon=True, name=f"routes-{self.namespace}").start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.refresh()

    def refresh(self) -> list[Backend]:
        try:
            self.current = self.read()
            self.error = None
        except Exception as exc:  # noqa: BLE001 - a gateway keeps its last good config when the API server hiccups
            self.error = f"{type(exc).__name__}: {exc}"
        return self.current

    def read(self) -> list[Backend]:
        isvc = self.custom.get_namespaced_custom_object(*KSERVE[:2], self.namespace, KSERVE[2], self.isvc)
        mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode")
        if mode in ("Standard", "RawDeployment"):
            return self._standard(isvc)
        return self._serverless(isvc)

    # ------------------------------------------------------------- Standard
    def _standard(self, isvc: dict) -> list[Backend]:
        from kubernetes.client.exceptions import ApiException

        try:
            route = self.custom.get_namespaced_custom_object(
                *HTTPROUTE[:2], self.namespace, HTTPROUTE[2], f"{self.isvc}-spamops-canary"
            )
            refs = [(b["name"], b.get("weight", 1)) for r in route["spec"]["rules"] for b in r.get("backendRefs", [])]
        except ApiException as exc:
            if exc.status != 404:
                raise
            name = isvc["spec"]["predictor"].get("name")
            refs = [(f"{self.isvc}-{name}-predictor" if name else f"{self.isvc}-predictor", 100)]
        out = []
        for service, weight in refs:
            out += [Backend(v, weight * share, ready) for v, share, ready in self._endpoints(service)]
        return out

    def _endpoints(self, service: str) -> list[tuple[str, float, bool]]:
        """(version, share, ready) behind a Service: its Ready pods by version, else the Deployment's template."""
        from kubernetes.client.exceptions import ApiException

        try:
            selector = self.core.read_namespaced_service(service, self.namespace).spec.selector or {}
        except ApiException as exc:
            if exc.status != 404:
                raise
            return [(f"no-service-{service}", 1.0, False)]
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=",".join(f"{k}={v}" for k, v in selector.items())
        ).items
        try:  # KServe names a predictor's Deployment like its Service
            template = self.apps.read_namespaced_deployment(service, self.namespace).spec.template.spec
            deployed = _env_uri(template.containers)
        except ApiException:
            deployed = None
        ready: dict[str, int] = {}
        for pod in pods:
            conditions = {c.type: c.status for c in (pod.status.conditions or [])}
            if conditions.get("Ready") == "True" and pod.metadata.deletion_timestamp is None:
                # KServe's pod webhook rewrites the pod's STORAGE_URI to the mount path (/mnt/models):
                # the version is in the template of the ReplicaSet the pod was made from.
                version = version_of(self._replicaset_uri(pod) or deployed)
                ready[version] = ready.get(version, 0) + 1
        if ready:
            total = sum(ready.values())
            return [(v, n / total, True) for v, n in ready.items()]
        return [(version_of(deployed), 1.0, False)]

    def _replicaset_uri(self, pod) -> str | None:
        from kubernetes.client.exceptions import ApiException

        owners = [o.name for o in pod.metadata.owner_references or [] if o.kind == "ReplicaSet"]
        if not owners:
            return None
        try:
            rs = self.apps.read_namespaced_replica_set(owners[0], self.namespace)
        except ApiException:
            return None
        return _env_uri(rs.spec.template.spec.containers)

    # ----------------------------------------------------------- Serverless
    def _serverless(self, isvc: dict) -> list[Backend]:
        predictor = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
        ksvc = f"{self.isvc}-predictor"
        out = []
        for entry in predictor.get("traffic") or []:
            template = self.knative.template(ksvc, self.namespace, entry["revisionName"]) if self.knative else None
            version = version_of(storage_uri((template or {}).get("spec") or {}))
            out.append(Backend(version, float(entry.get("percent") or 0), template is not None))
        return out
