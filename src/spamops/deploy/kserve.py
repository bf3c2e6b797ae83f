"""Canary rollout of a model version on a KServe InferenceService (Serverless mode).

KServe splits traffic between the last rolled-out revision and a new one when
``spec.predictor.canaryTrafficPercent`` is set; a new revision exists only when
the predictor spec changes, so every version gets its own ``STORAGE_URI``.
Promote = drop ``canaryTrafficPercent`` (the new revision takes 100%); roll back =
keep the new spec at ``canaryTrafficPercent: 0`` (all traffic to the previous one).

Updates are JSON merge patches carrying the ``resourceVersion`` that was read, so
a concurrent edit makes the API server refuse ours (409) instead of being lost.
Custom resources do not support strategic merge patch.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from spamops.errors import BadInputError, ConflictError, NotFoundError, SpamopsError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
CONTAINER = "kserve-container"  # KServe's required name for a custom predictor container
STORAGE_ENV = "STORAGE_URI"


@dataclass(frozen=True)
class Target:
    """Which InferenceService to drive, and how to reach the API server."""

    name: str = "spam"
    namespace: str = "spamops"
    kubeconfig: str | None = None  # None: in-cluster service account, else $KUBECONFIG / ~/.kube/config
    context: str | None = None


@dataclass(frozen=True)
class RolloutState:
    """What the InferenceService asks for, and what KServe reports it routes."""

    storage_uri: str | None
    canary_percent: int | None
    traffic: list[dict]

    def to_json(self) -> dict:
        return {"storage_uri": self.storage_uri, "canary_percent": self.canary_percent, "traffic": self.traffic}


def _api(target: Target):
    from kubernetes import client, config

    # $KUBECONFIG is read here, not when the kubernetes package was imported
    kubeconfig = target.kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        if kubeconfig is None and not target.context:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
        else:
            config.load_kube_config(config_file=kubeconfig, context=target.context)
    except (config.ConfigException, OSError) as exc:
        raise BadInputError(f"kubeconfig {kubeconfig or '~/.kube/config'}: {exc}") from None
    return client.CustomObjectsApi()


def _call(target: Target, what: str, fn, *args, **kwargs):
    from kubernetes.client.exceptions import ApiException

    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        where = f"inferenceservice {target.namespace}/{target.name}"
        if exc.status == 404:
            raise NotFoundError(f"{where}: not found; deploy the chart or manifests first") from None
        if exc.status == 409:
            raise ConflictError(f"{where}: changed while we {what}; re-run to apply on top of the new state") from None
        if exc.status in (401, 403):
            raise SpamopsError(
                f"{where}: the API server refused to let us {what} ({exc.status} {exc.reason})"
            ) from None
        if exc.status in (400, 422):
            raise BadInputError(f"{where}: the API server rejected the change: {exc.reason}") from None
        raise SpamopsError(f"{where}: cannot {what}: {exc.status} {exc.reason}") from None
    except OSError as exc:  # urllib3 connection errors are OSErrors
        raise SpamopsError(
            f"inferenceservice {target.namespace}/{target.name}: API server unreachable: {exc}"
        ) from None


def _read(target: Target) -> dict:
    api = _api(target)
    return _call(
        target, "read it", api.get_namespaced_custom_object, GROUP, VERSION, target.namespace, PLURAL, target.name
    )


def _container(isvc: dict) -> dict:
    for container in isvc.get("spec", {}).get("predictor", {}).get("containers", []) or []:
        if container.get("name") == CONTAINER:
            return container
    raise BadInputError(
        f"inferenceservice {isvc['metadata'].get('namespace')}/{isvc['metadata']['name']}: "
        f"no predictor container named {CONTAINER!r}; spamops drives custom-container predictors"
    )


def state_of(isvc: dict) -> RolloutState:
    """The rollout state of an InferenceService object."""
    env = {e.get("name"): e.get("value") for e in _container(isvc).get("env", []) or []}
    predictor_status = (isvc.get("status", {}).get("components", {}) or {}).get("predictor", {}) or {}
    return RolloutState(
        storage_uri=env.get(STORAGE_ENV),
        canary_percent=isvc["spec"]["predictor"].get("canaryTrafficPercent"),
        traffic=predictor_status.get("traffic", []) or [],
    )


def status(target: Target) -> RolloutState:
    """The current rollout state."""
    return state_of(_read(target))


def _patch(target: Target, isvc: dict, predictor_changes: dict, what: str) -> RolloutState:
    body = {
        "metadata": {"resourceVersion": isvc["metadata"]["resourceVersion"]},
        "spec": {"predictor": predictor_changes},
    }
    api = _api(target)
    updated = _call(
        target,
        what,
        api.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        target.namespace,
        PLURAL,
        target.name,
        body,
        field_manager="spamops-rollout",
    )
    return state_of(updated)


def canary(target: Target, storage_uri: str, percent: int) -> RolloutState:
    """Send ``percent`` of traffic to a new revision serving ``storage_uri``."""
    if not 0 <= percent <= 100:
        raise BadInputError(f"--percent {percent}: must be between 0 and 100")
    isvc = _read(target)
    containers = copy.deepcopy(isvc["spec"]["predictor"]["containers"])
    container = _container({**isvc, "spec": {"predictor": {"containers": containers}}})
    env = [e for e in container.get("env", []) or [] if e.get("name") != STORAGE_ENV]
    container["env"] = [*env, {"name": STORAGE_ENV, "value": storage_uri}]
    # merge patch replaces lists whole: send every container, changed only in STORAGE_URI
    return _patch(target, isvc, {"containers": containers, "canaryTrafficPercent": percent}, "started the canary")


def promote(target: Target) -> RolloutState:
    """Give the canary revision all traffic."""
    isvc = _read(target)
    if isvc["spec"]["predictor"].get("canaryTrafficPercent") is None:
        return state_of(isvc)
    return _patch(target, isvc, {"canaryTrafficPercent": None}, "promoted the canary")


def rollback(target: Target) -> RolloutState:
    """Send all traffic back to the previously rolled-out revision (during a canary)."""
    isvc = _read(target)
    if isvc["spec"]["predictor"].get("canaryTrafficPercent") is None:
        raise BadInputError(
            f"inferenceservice {target.namespace}/{target.name}: no canary in progress; to go back to an earlier "
            "model, run 'spamops rollback' then 'spamops rollout canary' with the version it names"
        )
    return _patch(target, isvc, {"canaryTrafficPercent": 0}, "rolled the canary back")
