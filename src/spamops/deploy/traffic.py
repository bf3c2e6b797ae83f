"""Two ways KServe splits traffic, behind one interface: :class:`Serverless` and :class:`Standard`.

*Serverless* (Knative): ``spec.predictor.canaryTrafficPercent``; Knative keeps the
previous revision, so the stable side is not in the spec any more - spamops
remembers its storage URI in an annotation.  Promote = drop the field, abort = 0.

*Standard* (RawDeployment): a ``spec.canary[]`` entry named after the version
(KServe >= 0.20 creates ``{isvc}-{name}-predictor``).  Released KServe does not
route by it, so spamops owns a Gateway API HTTPRoute with weighted backendRefs
to the stable and canary predictor Services (the canary's share only once
KServe reports it Ready, as Knative does for a revision) - the design KServe's main branch
adopts (``rollout.standard_route: false`` turns ours off once KServe routes).
Promote = the stable predictor takes the canary's spec and name (same
Deployment, no restart) and the entry goes; abort = the route first (traffic
back at once), then the entry.

Which backend applies is read from the object's
``serving.kserve.io/deploymentMode`` annotation, never guessed.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Literal

from spamops import names
from spamops.config import RolloutConfig
from spamops.deploy.cluster import Cluster
from spamops.errors import BadInputError

_DEFAULTS = RolloutConfig()  # the gateway settings' defaults: rollout.standard_route, gateway_name, gateway_namespace
CONTAINER = "kserve-container"  # KServe's required name for a custom predictor container
STORAGE_ENV = names.STORAGE_URI_ENV
MODE_ANNOTATION = names.DEPLOYMENT_MODE_ANNOTATION
PREFIX = "rollout.spamops.io/"
STABLE_URI = PREFIX + "stable-storage-uri"
CANARY_URI = PREFIX + "canary-storage-uri"
STATE = PREFIX + "state"  # JSON: step, weight, verdict, at - what `status` and Argo CD users read
# What a Standard canary takes over from the stable predictor besides its containers: the identity
# that holds the S3 credentials, the pod security settings and placement (KServe's canary entry
# carries no autoscaling fields: its replicas follow the traffic share).
CANARY_POD_FIELDS = (
    "serviceAccountName",
    "securityContext",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "affinity",
)


def version_of(uri: str | None) -> str | None:
    """A version's id is its folder in the store: ``…/spam/<version>/``."""
    return uri.rstrip("/").rsplit("/", 1)[-1] if uri else None


def dns_name(version: str) -> str:
    """The canary entry's name (a DNS label, short enough for ``{isvc}-{name}-predictor``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    return (name[-40:].lstrip("-") or "canary") if len(name) > 40 else (name or "canary")


Mode = Literal["serverless", "standard"]


def mode_of(isvc: dict) -> Mode:
    raw = ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, "Serverless")
    return "standard" if raw in ("Standard", "RawDeployment") else "serverless"


def _container(predictor: dict, where: str) -> dict:
    for container in predictor.get("containers", []) or []:
        if container.get("name") == CONTAINER:
            return container
    raise BadInputError(
        f"{where}: no predictor container named {CONTAINER!r}; spamops drives custom-container predictors"
    )


def storage_uri(predictor: dict, where: str) -> str | None:
    env = {e.get("name"): e.get("value") for e in _container(predictor, where).get("env", []) or []}
    return env.get(STORAGE_ENV)


def with_storage_uri(predictor: dict, uri: str, where: str) -> list[dict]:
    """The predictor's containers, changed only in STORAGE_URI (merge patch replaces lists whole)."""
    containers = copy.deepcopy(predictor.get("containers", []) or [])
    container = _container({"containers": containers}, where)
    env = [e for e in container.get("env", []) or [] if e.get("name") != STORAGE_ENV]
    container["env"] = [*env, {"name": STORAGE_ENV, "value": uri}]
    return containers


def _conditions(isvc: dict) -> dict[str, str]:
    return {c.get("type"): c.get("status") for c in (isvc.get("status") or {}).get("conditions", []) or []}


@dataclass
class Split:
    """One side-by-side view of an InferenceService's rollout, whichever the mode."""

    mode: Mode
    stable_version: str | None
    stable_uri: str | None
    canary_version: str | None
    canary_uri: str | None
    canary_percent: int | None  # declared (spec); None = no canary
    routed_canary_percent: int | None  # what KServe (Serverless) or our HTTPRoute (Standard) reports
    ready: bool
    canary_ready: bool | None
    state: dict = field(default_factory=dict)
    generation: int | None = None
    observed_generation: int | None = None

    @classmethod
    def of(
        cls,
        isvc: dict,
        mode: Mode,
        *,
        stable_uri: str | None,
        canary_uri: str | None,
        canary_percent: int | None,
        routed: int | None,
        canary_ready: bool | None,
    ) -> Split:
        """The view of ``isvc`` once a backend has read its two sides; the rest is mode-independent."""
        notes = isvc["metadata"].get("annotations") or {}
        return cls(
            mode=mode,
            stable_version=version_of(stable_uri),
            stable_uri=stable_uri,
            canary_version=version_of(canary_uri),
            canary_uri=canary_uri,
            canary_percent=canary_percent,
            routed_canary_percent=routed,
            ready=_conditions(isvc).get("Ready") == "True",
            canary_ready=canary_ready,
            state=json.loads(notes.get(STATE) or "{}"),
            generation=isvc["metadata"].get("generation"),
            observed_generation=(isvc.get("status") or {}).get("observedGeneration"),
        )

    def to_json(self) -> dict:
        return asdict(self)


def annotations_patch(stable: str | None, canary: str | None, state: dict | None = None) -> dict:
    notes: dict = {STABLE_URI: stable, CANARY_URI: canary}
    if state is not None:
        notes[STATE] = json.dumps(state, sort_keys=True)
    return notes


def rolled_out_revision(isvc: dict) -> str | None:
    """KServe's ``latestRolledoutRevision``: the revision that had all traffic last (Serverless)."""
    status = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    return status.get("latestRolledoutRevision")


class Serverless:
    """Knative revisions: ``canaryTrafficPercent``."""

    mode: Mode = "serverless"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.where = cluster.target.where

    def split(self, isvc: dict) -> Split:
        predictor = isvc["spec"]["predictor"]
        notes = isvc["metadata"].get("annotations") or {}
        live_uri = storage_uri(predictor, self.where)
        percent = predictor.get("canaryTrafficPercent")
        canary_uri = notes.get(CANARY_URI) if percent is not None else None
        stable_uri = notes.get(STABLE_URI) if canary_uri else live_uri
        status = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
        routed = None
        for entry in status.get("traffic", []) or []:
            if entry.get("latestRevision") and canary_uri:
                routed = int(entry.get("percent") or 0)
        canary_ready = None
        if canary_uri:
            # The canary's revision is not the one that was stable when it started: until Knative has created
            # it, the status still shows that one as latest created *and* ready. (Not "not rolled out": KServe
            # marks the latest revision rolled out as soon as it has 100 %, i.e. at the last step.)
            created = status.get("latestCreatedRevision")
            stable_revision = json.loads(notes.get(STATE) or "{}").get("stable_revision")
            canary_ready = (
                bool(created)
                and status.get("latestReadyRevision") == created
                and created != (stable_revision or status.get("latestRolledoutRevision"))
            )
        return Split.of(
            isvc,
            self.mode,
            stable_uri=stable_uri,
            canary_uri=canary_uri,
            canary_percent=percent if canary_uri else None,
            routed=routed,
            canary_ready=canary_ready,
        )

    def start(self, uri: str, percent: int, state: dict) -> Split:
        def change(isvc: dict) -> dict | None:
            current = self.split(isvc)
            if current.canary_uri and current.canary_uri != uri and (current.canary_percent or 0) > 0:
                raise BadInputError(
                    f"{self.where}: a canary of {current.canary_version} is in progress; "
                    "run 'spamops rollout promote' or 'spamops rollout abort' first"
                )
            predictor = isvc["spec"]["predictor"]
            live = storage_uri(predictor, self.where)
            stable = current.stable_uri if live == uri or current.canary_uri else live
            if stable == uri:
                raise BadInputError(f"{self.where}: {version_of(uri)} is already the stable version")
            # Which revision serves the stable side now: the canary's is any other (see split). In place,
            # so the caller's copy of the state carries it on.
            state["stable_revision"] = rolled_out_revision(isvc)
            return {
                "metadata": {"annotations": annotations_patch(stable, uri, state)},
                "spec": {
                    "predictor": {
                        "containers": with_storage_uri(predictor, uri, self.where),
                        "canaryTrafficPercent": percent,
                    }
                },
            }

        return self.split(self.cluster.update(change, "started the canary"))

    def set_weight(self, percent: int, state: dict) -> Split:
        def change(isvc: dict) -> dict:
            if self.split(isvc).canary_uri is None:
                raise BadInputError(f"{self.where}: no canary in progress; start one with 'spamops rollout start'")
            if percent == 0 and self._rolled_out(isvc):
                return self._redeploy_stable(isvc, state)
            return {
                "metadata": {"annotations": {STATE: json.dumps(state, sort_keys=True)}},
                "spec": {"predictor": {"canaryTrafficPercent": percent}},
            }

        return self.split(self.cluster.update(change, f"set the canary to {percent}%"))

    def promote(self, state: dict) -> Split:
        def change(isvc: dict) -> dict:
            current = self.split(isvc)
            if current.canary_uri is None:
                raise BadInputError(f"{self.where}: no canary in progress; nothing to promote")
            return {
                "metadata": {"annotations": annotations_patch(current.canary_uri, None, state)},
                "spec": {"predictor": {"canaryTrafficPercent": None}},
            }

        return self.split(self.cluster.update(change, "promoted the canary"))

    def follow(self, isvc: dict) -> bool:
        """Knative routes a revision only once it is Ready: nothing to catch up on."""
        return False

    def abort(self, state: dict) -> Split:
        """All traffic to the previous revision; the canary's spec stays (KServe's documented rollback)."""

        def change(isvc: dict) -> dict:
            if self.split(isvc).canary_uri is None:
                raise BadInputError(f"{self.where}: no canary in progress; nothing to abort")
            if self._rolled_out(isvc):
                return self._redeploy_stable(isvc, state)
            return {
                "metadata": {"annotations": {STATE: json.dumps(state, sort_keys=True)}},
                "spec": {"predictor": {"canaryTrafficPercent": 0}},
            }

        return self.split(self.cluster.update(change, "aborted the canary"))

    def stable_serving(self, isvc: dict, canary_revision: str | None) -> str | None:
        """After a redeploy of stable: its revision's name once Knative has it Ready and routed, else ``None``."""
        status = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
        created, ready = status.get("latestCreatedRevision"), status.get("latestReadyRevision")
        if not created or created == canary_revision or ready != created:
            return None
        if _conditions(isvc).get("Ready") != "True":
            return None
        generation = isvc["metadata"].get("generation")
        observed = (isvc.get("status") or {}).get("observedGeneration")
        if generation is not None and observed is not None and observed < generation:
            return None
        traffic = status.get("traffic") or []
        if traffic and not any(
            int(t.get("percent") or 0) == 100 and (t.get("revisionName") == created or t.get("latestRevision"))
            for t in traffic
        ):
            return None
        return created

    def rolled_out(self, isvc: dict) -> bool:
        return self._rolled_out(isvc)

    @staticmethod
    def _rolled_out(isvc: dict) -> bool:
        """Whether KServe has marked the canary's revision rolled out (it does once it had 100 %).

        Then ``canaryTrafficPercent: 0`` routes KServe's ``prev`` target, which is now the canary's
        own revision: setting 0 would leave the canary serving everything.
        """
        notes = isvc["metadata"].get("annotations") or {}
        stable_revision = json.loads(notes.get(STATE) or "{}").get("stable_revision")
        rolled_out = rolled_out_revision(isvc)
        return bool(stable_revision and rolled_out and rolled_out != stable_revision)

    def _redeploy_stable(self, isvc: dict, state: dict) -> dict:
        """Back to the stable version through its URI: a new revision of it, routed once it is Ready."""
        stable = self.split(isvc).stable_uri
        if not stable:
            raise BadInputError(
                f"{self.where}: the canary has been rolled out and no stable storage URI is recorded "
                f"({STABLE_URI}); apply 'spamops render isvc <stable version>' to serve it again"
            )
        return {
            "metadata": {"annotations": annotations_patch(stable, None, state)},
            "spec": {
                "predictor": {
                    "containers": with_storage_uri(isvc["spec"]["predictor"], stable, self.where),
                    "canaryTrafficPercent": None,
                }
            },
        }


class Standard:
    """RawDeployment: ``spec.canary[]`` plus spamops' weighted HTTPRoute."""

    mode: Mode = "standard"

    def __init__(
        self,
        cluster: Cluster,
        *,
        route: bool = _DEFAULTS.standard_route,
        gateway: str = _DEFAULTS.gateway_name,
        gateway_namespace: str = _DEFAULTS.gateway_namespace,
        port: int = 80,
    ) -> None:
        self.cluster = cluster
        self.where = cluster.target.where
        self.route_enabled = route
        self.gateway, self.gateway_namespace, self.port = gateway, gateway_namespace, port
        self.route_name = f"{cluster.target.name}-spamops-canary"

    def _service(self, predictor_name: str | None) -> str:
        isvc = self.cluster.target.name
        return f"{isvc}-{predictor_name}-predictor" if predictor_name else f"{isvc}-predictor"

    def split(self, isvc: dict) -> Split:
        predictor = isvc["spec"]["predictor"]
        canaries = isvc["spec"].get("canary") or []
        canary = canaries[0] if canaries else None
        stable_uri = storage_uri(predictor, self.where)
        canary_uri = storage_uri(canary["predictor"], self.where) if canary else None
        routed = None
        if canary and self.route_enabled:
            route = self.cluster.read_route(self.route_name)
            if route:
                weights = {
                    b["name"]: b.get("weight", 1)
                    for r in route["spec"].get("rules", [])
                    for b in r.get("backendRefs", [])
                }
                total = sum(weights.values()) or 1
                routed = round(100 * weights.get(self._service(canary["predictor"]["name"]), 0) / total)
        canary_ready = None
        if canary:
            statuses = {s.get("name"): s for s in (isvc.get("status") or {}).get("canaryStatuses", []) or []}
            canary_ready = bool(statuses.get(canary["predictor"]["name"], {}).get("ready"))
        return Split.of(
            isvc,
            self.mode,
            stable_uri=stable_uri,
            canary_uri=canary_uri,
            canary_percent=int(canary["trafficPercent"]) if canary else None,
            routed=routed,
            canary_ready=canary_ready,
        )

    def route(self, stable_predictor_name: str | None, canary_predictor_name: str | None, percent: int) -> dict:
        """The HTTPRoute for a split: weights in percent to the two predictor Services."""
        backends = [{"name": self._service(stable_predictor_name), "port": self.port, "weight": 100 - percent}]
        if canary_predictor_name:
            backends.append({"name": self._service(canary_predictor_name), "port": self.port, "weight": percent})
        t = self.cluster.target
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": self.route_name,
                "namespace": t.namespace,
                "labels": {names.MANAGED_BY_LABEL: "spamops", names.INFERENCE_SERVICE_LABEL: t.name},
            },
            "spec": {
                "parentRefs": [{"name": self.gateway, "namespace": self.gateway_namespace}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}],
            },
        }

    def _set_route(self, isvc: dict, percent: int) -> None:
        if not self.route_enabled:
            return
        spec = isvc["spec"]
        canaries = spec.get("canary") or []
        self.cluster.apply_route(
            self.route(spec["predictor"].get("name"), canaries[0]["predictor"]["name"] if canaries else None, percent)
        )

    def _routable(self, isvc: dict, percent: int) -> int:
        """The canary's share in the route: its weight once KServe reports it Ready, 0 before.

        A gateway answers 503 for a backend Service without ready endpoints, so
        routing the declared share at once would fail that share of requests (and
        the canary's success rate) until its pods are up.  Knative does the same
        for a revision that is not Ready.  :meth:`follow` routes it later.
        """
        return percent if self.split(isvc).canary_ready else 0

    def follow(self, isvc: dict) -> bool:
        """Give a canary that became Ready its declared share in the route; True if the route changed."""
        split = self.split(isvc)
        if not self.route_enabled or split.canary_uri is None or not split.canary_ready:
            return False
        if split.routed_canary_percent == split.canary_percent:
            return False
        self._set_route(isvc, int(split.canary_percent or 0))
        return True

    def _checked(self, isvc: dict) -> dict:
        if not isvc["spec"].get("canary"):
            raise BadInputError(
                f"{self.where}: the API server dropped spec.canary: its InferenceService CRD predates KServe 0.20, "
                "which Standard-mode canaries need; upgrade KServe"
            )
        return isvc

    def start(self, uri: str, percent: int, state: dict) -> Split:
        name = dns_name(version_of(uri) or "canary")

        def change(isvc: dict) -> dict | None:
            current = self.split(isvc)
            if current.canary_uri and current.canary_uri != uri:
                raise BadInputError(
                    f"{self.where}: a canary of {current.canary_version} is in progress; "
                    "run 'spamops rollout promote' or 'spamops rollout abort' first"
                )
            if current.stable_uri == uri:
                raise BadInputError(f"{self.where}: {version_of(uri)} is already the stable version")
            predictor = isvc["spec"]["predictor"]
            if predictor.get("name") == name:
                raise BadInputError(
                    f"{self.where}: the stable predictor is already named {name!r}; pick another version"
                )
            pod = {k: copy.deepcopy(predictor[k]) for k in CANARY_POD_FIELDS if k in predictor}
            entry = {
                "predictor": {**pod, "name": name, "containers": with_storage_uri(predictor, uri, self.where)},
                "trafficPercent": percent,
            }
            return {
                "metadata": {"annotations": annotations_patch(current.stable_uri, uri, state)},
                "spec": {"canary": [entry]},
            }

        isvc = self._checked(self.cluster.update(change, "started the canary"))
        self._set_route(isvc, self._routable(isvc, percent))
        return self.split(isvc)

    def set_weight(self, percent: int, state: dict) -> Split:
        def change(isvc: dict) -> dict:
            canaries = copy.deepcopy(isvc["spec"].get("canary") or [])
            if not canaries:
                raise BadInputError(f"{self.where}: no canary in progress; start one with 'spamops rollout start'")
            canaries[0]["trafficPercent"] = percent
            return {
                "metadata": {"annotations": {STATE: json.dumps(state, sort_keys=True)}},
                "spec": {"canary": canaries},
            }

        isvc = self.cluster.update(change, f"set the canary to {percent}%")
        self._set_route(isvc, self._routable(isvc, percent))
        return self.split(isvc)

    def promote(self, state: dict) -> Split:
        def change(isvc: dict) -> dict:
            canaries = isvc["spec"].get("canary") or []
            if not canaries:
                raise BadInputError(f"{self.where}: no canary in progress; nothing to promote")
            canary = canaries[0]["predictor"]
            uri = storage_uri(canary, self.where)
            return {
                "metadata": {"annotations": annotations_patch(uri, None, state)},
                "spec": {"predictor": {"name": canary["name"], "containers": canary["containers"]}, "canary": None},
            }

        isvc = self.cluster.update(change, "promoted the canary")
        self._set_route(isvc, 0)
        return self.split(isvc)

    def abort(self, state: dict) -> Split:
        isvc = self.cluster.read_isvc()
        if not isvc["spec"].get("canary"):
            raise BadInputError(f"{self.where}: no canary in progress; nothing to abort")
        if self.route_enabled:  # traffic back first: removing the entry deletes the canary's Service
            self.cluster.apply_route(self.route(isvc["spec"]["predictor"].get("name"), None, 0))

        def change(isvc: dict) -> dict | None:
            if not isvc["spec"].get("canary"):
                return None
            current = self.split(isvc)
            return {
                "metadata": {"annotations": annotations_patch(current.stable_uri, None, state)},
                "spec": {"canary": None},
            }

        return self.split(self.cluster.update(change, "aborted the canary"))


def backend_for(
    cluster: Cluster,
    isvc: dict,
    *,
    route: bool = _DEFAULTS.standard_route,
    gateway: str = _DEFAULTS.gateway_name,
    gateway_namespace: str = _DEFAULTS.gateway_namespace,
):
    """The backend matching the live object's deployment mode."""
    if mode_of(isvc) == "standard":
        return Standard(cluster, route=route, gateway=gateway, gateway_namespace=gateway_namespace)
    return Serverless(cluster)
