"""``spamops rollout shadow``: give the serving predictor a shadow version, and read what it saw.

The predictor does the shadowing (:mod:`spamops.serving.shadow`); this module
only sets or clears ``SHADOW_STORAGE_URI`` on the live InferenceService's
``kserve-container`` and summarises the predictors' ``spamops_shadow_*``
counters from Prometheus, summed over every replica and worker (each one
counts only what it scored).  The env entries come from the chart
(``predictor.shadowStorageUri``) so that an ``s3://`` shadow also gets the S3
credentials the predictor needs to pull it (KServe's storage initializer pulls
``STORAGE_URI`` only); the names added are remembered in an annotation and
removed again on stop.

Changing the predictor's spec starts a new revision (Serverless) or a rolling
update (Standard) with the same primary: a shadow never shares a rollout with a
canary, so it is refused while one is in progress.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spamops import names
from spamops.deploy import traffic
from spamops.errors import BadInputError
from spamops.prometheus import Prometheus

SHADOW_ENV = names.SHADOW_STORAGE_URI_ENV
SHADOW_VERSION = traffic.PREFIX + "shadow-version"
SHADOW_ADDED_ENV = traffic.PREFIX + "shadow-env"  # JSON list of the env names `start` added
SHADOW_ID = traffic.PREFIX + "shadow-id"  # the rollout record's id, so start and stop land in one record


@dataclass
class ShadowReport:
    """What the shadow saw over a window, summed over all predictor replicas (``None``: no data)."""

    primary_version: str | None
    shadow_version: str | None
    window: str
    compared: float | None
    agreements: float | None
    agreement_rate: float | None
    ham_to_spam: float | None
    spam_to_ham: float | None
    primary_spam_rate: float | None
    shadow_spam_rate: float | None
    dropped: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if not self.compared:
            return f"no compared instances in the last {self.window}"
        return (
            f"{self.compared:.0f} compared in {self.window}, agreement {self.agreement_rate:.4f} "
            f"(ham->spam {self.ham_to_spam:.0f}, spam->ham {self.spam_to_ham:.0f}), spam rate "
            f"primary {self.primary_spam_rate:.4f} / shadow {self.shadow_spam_rate:.4f}, dropped {self.dropped:.0f}"
        )


def report(prom: Prometheus, primary: str | None, shadow: str | None, window: str) -> ShadowReport:
    """Increases of the shadow counters over ``window`` for one (primary, shadow) version pair."""
    pair = f'model_version="{primary}",shadow_version="{shadow}"'

    def total(name: str, extra: str = "") -> float | None:
        return prom.scalar(f"sum(increase({name}{{{pair}{extra}}}[{window}]))")

    compared = total(names.SHADOW_COMPARED_TOTAL)
    agreements = total(names.SHADOW_AGREEMENTS_TOTAL)
    primary_spam = total(names.SHADOW_SPAM_TOTAL, ',side="primary"')
    shadow_spam = total(names.SHADOW_SPAM_TOTAL, ',side="shadow"')

    def share(part: float | None) -> float | None:
        return part / compared if compared and part is not None else None

    return ShadowReport(
        primary_version=primary,
        shadow_version=shadow,
        window=window,
        compared=compared,
        agreements=agreements,
        agreement_rate=share(agreements),
        ham_to_spam=total(names.SHADOW_DISAGREEMENTS_TOTAL, ',direction="ham_to_spam"'),
        spam_to_ham=total(names.SHADOW_DISAGREEMENTS_TOTAL, ',direction="spam_to_ham"'),
        primary_spam_rate=share(primary_spam),
        shadow_spam_rate=share(shadow_spam),
        dropped=total(names.SHADOW_DROPPED_TOTAL),
    )


def verdict(found: ShadowReport, min_compared: int, min_agreement: float) -> tuple[str, str]:
    """The shadow gate: ``inconclusive`` below ``min_compared`` instances, else ``pass``/``fail`` on agreement."""
    compared = found.compared or 0
    if compared < min_compared:
        return "inconclusive", f"{compared:.0f} of {min_compared} instances compared in {found.window}"
    if found.agreement_rate is None or found.agreement_rate < min_agreement:
        return "fail", f"agreement {found.agreement_rate:.4f} below {min_agreement:g}: {found.summary()}"
    return "pass", f"agreement {found.agreement_rate:.4f} reaches {min_agreement:g}: {found.summary()}"


def chart_env(shadow_uri: str, chart: Path | None) -> list[dict[str, Any]]:
    """The env the chart gives the predictor for ``shadow_uri``, without STORAGE_URI (the live one stays)."""
    from spamops.deploy.render import helm_template

    doc = helm_template({"predictor": {"shadowStorageUri": shadow_uri, "keepLiveModel": False}}, chart=chart)
    container = traffic._container(doc["spec"]["predictor"], "the chart's InferenceService")
    return [e for e in container.get("env", []) or [] if e.get("name") != traffic.STORAGE_ENV]


def shadow_of(isvc: dict[str, Any], where: str) -> str | None:
    """The live ``SHADOW_STORAGE_URI`` of the predictor, if any."""
    container = traffic._container(isvc["spec"]["predictor"], where)
    env = {e.get("name"): e.get("value") for e in container.get("env", []) or []}
    return env.get(SHADOW_ENV)


def start_patch(
    isvc: dict[str, Any], split: traffic.Split, version: str, env: list[dict[str, Any]], where: str, rollout_id: str
) -> dict[str, Any]:
    """The merge patch that adds the shadow's env to ``kserve-container`` (lists are replaced whole)."""
    if split.canary_uri is not None:
        raise BadInputError(
            f"{where}: a canary of {split.canary_version} is in progress (or was aborted and is still in the spec); "
            "promote or abort it and start the shadow on the stable version alone"
        )
    predictor = isvc["spec"]["predictor"]
    live_uri = traffic.storage_uri(predictor, where)
    if traffic.version_of(live_uri) == version:
        raise BadInputError(f"{where}: {version} is the serving version; shadow another one")
    containers = copy.deepcopy(predictor.get("containers", []) or [])
    container = traffic._container({"containers": containers}, where)
    present = {e.get("name") for e in container.get("env", []) or []}
    added = [e["name"] for e in env if e["name"] not in present and e["name"] != SHADOW_ENV]
    wanted = {e["name"]: e for e in env if e["name"] == SHADOW_ENV or e["name"] in added}
    kept = [e for e in container.get("env", []) or [] if e.get("name") != SHADOW_ENV]
    container["env"] = [*kept, *wanted.values()]
    notes = isvc["metadata"].get("annotations") or {}
    previous = json.loads(notes.get(SHADOW_ADDED_ENV) or "[]")
    return {
        "metadata": {
            "annotations": {
                SHADOW_VERSION: version,
                SHADOW_ID: rollout_id,
                SHADOW_ADDED_ENV: json.dumps(sorted(set(previous) | set(added))),
            }
        },
        "spec": {"predictor": {"containers": containers}},
    }


def stop_patch(isvc: dict[str, Any], where: str) -> dict[str, Any] | None:
    """The merge patch that removes the shadow and the env names ``start`` added; ``None`` if there is none."""
    predictor = isvc["spec"]["predictor"]
    notes = isvc["metadata"].get("annotations") or {}
    if shadow_of(isvc, where) is None and SHADOW_VERSION not in notes:
        return None
    drop = {SHADOW_ENV, *json.loads(notes.get(SHADOW_ADDED_ENV) or "[]")}
    containers = copy.deepcopy(predictor.get("containers", []) or [])
    container = traffic._container({"containers": containers}, where)
    container["env"] = [e for e in container.get("env", []) or [] if e.get("name") not in drop]
    return {
        "metadata": {"annotations": {SHADOW_VERSION: None, SHADOW_ADDED_ENV: None, SHADOW_ID: None}},
        "spec": {"predictor": {"containers": containers}},
    }
