"""Start a training run from the CronJob's template, at most one at a time and not within a cooldown.

This is ``kubectl create job --from=cronjob/spamops-retrain`` with two guards a restarted
trigger must not forget, so both live in the cluster, not in memory:

* **dedupe**: no new Job while a Job owned by the CronJob has not finished;
* **cooldown**: the CronJob's annotation ``spamops.dev/last-triggered-at``, claimed with a
  conditional patch (the read ``resourceVersion``), so two triggers racing create one Job.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from spamops import names
from spamops.errors import BadInputError, SpamopsError
from spamops.triggers import RetrainTarget, TriggerResult

LAST_TRIGGERED = names.LAST_TRIGGERED_ANNOTATION
TRIGGER_LABEL = names.TRIGGER_LABEL
REASON_ANNOTATION = names.TRIGGER_REASON_ANNOTATION


def _batch(target: RetrainTarget):
    """The batch API, reached the way ``spamops rollout`` reaches its cluster (same errors, same exit codes)."""
    from kubernetes import client

    from spamops.deploy.cluster import api_client

    return client.BatchV1Api(api_client(target.kubeconfig))


class _Conflict(Exception):
    """409: the CronJob changed since it was read (another trigger claimed it first)."""


def _call(target: RetrainTarget, api, what: str, fn, *args, **kwargs):
    from kubernetes.client.exceptions import ApiException

    from spamops.deploy.cluster import TIMEOUT, transport_errors, unreachable

    try:
        return fn(*args, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as exc:
        where = f"cronjob {target.namespace}/{target.cronjob}"
        if exc.status == 409:
            raise _Conflict(what) from None
        if exc.status == 404:
            raise BadInputError(f"{where}: not found; deploy the chart with training.cronJob.enabled") from None
        raise SpamopsError(f"{where}: cannot {what}: {exc.status} {exc.reason}") from None
    except transport_errors() as exc:
        raise unreachable(api.api_client.configuration.host, exc) from None


def _finished(job) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in (job.status.conditions or []))


def running_jobs(api, target: RetrainTarget, cronjob_uid: str) -> list[str]:
    """Unfinished Jobs owned by the CronJob (its schedule's and ours)."""
    jobs = _call(target, api, "list its Jobs", api.list_namespaced_job, target.namespace).items
    return [
        j.metadata.name
        for j in jobs
        if any(o.uid == cronjob_uid for o in (j.metadata.owner_references or [])) and not _finished(j)
    ]


def trigger_retrain(target: RetrainTarget, reason: str, source: str, now: datetime | None = None) -> TriggerResult:
    """Create one Job from the CronJob unless one runs or the cooldown has not passed."""
    now = now or datetime.now(UTC)
    api = _batch(target)
    cron = _call(target, api, "read it", api.read_namespaced_cron_job, target.cronjob, target.namespace)
    busy = running_jobs(api, target, cron.metadata.uid)
    if busy:
        return TriggerResult("running", busy[0], f"training Job {busy[0]} has not finished")
    annotations = cron.metadata.annotations or {}
    last = annotations.get(LAST_TRIGGERED)
    if last:
        since = now - datetime.fromisoformat(last)
        if since < target.cooldown:
            left = int((target.cooldown - since).total_seconds())
            return TriggerResult("cooldown", None, f"last triggered at {last}; {left}s of the cooldown left")
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    claim = {"metadata": {"resourceVersion": cron.metadata.resource_version, "annotations": {LAST_TRIGGERED: stamp}}}
    try:
        _call(target, api, "record the trigger", api.patch_namespaced_cron_job, target.cronjob, target.namespace, claim)
    except _Conflict:  # another trigger claimed it between our read and our patch
        return TriggerResult("cooldown", None, "another trigger started a run at the same moment")
    job = _job_from(cron, api, now, reason, source)
    try:
        created = _call(target, api, "create the training Job", api.create_namespaced_job, target.namespace, job)
    except (SpamopsError, _Conflict) as exc:  # give the cooldown back so Alertmanager's retry can succeed
        restore = {"metadata": {"annotations": {LAST_TRIGGERED: last}}}
        _call(
            target,
            api,
            "restore the cooldown",
            api.patch_namespaced_cron_job,
            target.cronjob,
            target.namespace,
            restore,
        )
        if isinstance(exc, _Conflict):
            raise SpamopsError(
                f"job {target.namespace}/{job['metadata']['name']}: already exists; retry in a second"
            ) from None
        raise
    return TriggerResult("created", created.metadata.name, reason)


def _job_from(cron, api, now: datetime, reason: str, source: str) -> dict:
    template = api.api_client.sanitize_for_serialization(cron.spec.job_template)
    metadata = copy.deepcopy(template.get("metadata") or {})
    metadata["name"] = f"{cron.metadata.name}-{source}-{int(now.timestamp())}"[:63]
    metadata.setdefault("labels", {})[TRIGGER_LABEL] = source
    metadata.setdefault("annotations", {}).update(
        {"cronjob.kubernetes.io/instantiate": "manual", REASON_ANNOTATION: reason[:1000]}
    )
    metadata["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": cron.metadata.name,
            "uid": cron.metadata.uid,
            "controller": True,
        }
    ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]}
