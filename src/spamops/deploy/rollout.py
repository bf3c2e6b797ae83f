"""Rollout operations on one InferenceService: start, the analysis loop, promote, abort, blue/green.

Every decision is recorded three ways: a Kubernetes Event on the
InferenceService (``kubectl describe``/Argo CD), the ``rollout.spamops.io/state``
annotation (current step, weight, verdict and the loop's counters - which is
what lets ``auto --once`` from a CronJob continue where the last run stopped),
and an append-only entry in the store next to the version (:mod:`record`).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spamops.config import AnalysisConfig, RolloutConfig
from spamops.deploy import analysis, judge, traffic
from spamops.deploy.cluster import Cluster
from spamops.deploy.lease import Lease
from spamops.deploy.record import RolloutLog
from spamops.errors import BadInputError, NotFoundError, SpamopsError
from spamops.prometheus import Prometheus
from spamops.records import ModelCard, ProductionPointer, RolloutAction, RolloutEntry

if TYPE_CHECKING:  # imported where used: GitOps only with --gitops, the registry by the caller
    from spamops.deploy.gitops import GitOps, GitOpsBackend
    from spamops.registry.versions import Registry

# What a rollout needs of a version: its name, storage URI and sha256 (a card or a production pointer).
Deployable = ModelCard | ProductionPointer

REASONS = {
    "started": "CanaryStarted",
    "advanced": "CanaryAdvanced",
    "held": "CanaryHeld",
    "paused": "CanaryPaused",
    "aborted": "CanaryAborted",
    "promoted": "CanaryPromoted",
    "switched": "Switched",
    "switched-back": "SwitchedBack",
    "shadow-started": "ShadowStarted",
    "shadow-stopped": "ShadowStopped",
}


def _first_state(card: Deployable, before: traffic.Split, weight: int, verdict: str) -> dict:
    """The state a new rollout starts from (kept in the InferenceService's annotation).

    Times are unix seconds: ``started_at`` (the rollout's evidence window starts here),
    ``step_started_at`` (the last weight change: the step's window and its ``interval``),
    ``progress_at`` (the last progress - start, a weight change, the canary seen Ready - from
    which ``progress_deadline`` counts). ``failed`` counts checks with a failed floor over the
    whole rollout (Flagger's ``threshold``), never reset by a pass.
    """
    now = time.time()
    return {
        "id": f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}",
        "seq": 0,
        "at": _now(),
        "started_at": now,
        "step_started_at": now,
        "progress_at": now,
        "canary_version": card.version,
        "stable_version": before.stable_version,
        "weight": weight,
        "step": 0,
        "verdict": verdict,
        "failed": 0,
    }


def _first_time(state: dict, *keys: str, default: float) -> float:
    for key in keys:
        if state.get(key) is not None:
            return float(state[key])
    return default


def step_started(state: dict, now: float) -> float:
    """When the current weight was set (state of an earlier build: the rollout's start)."""
    return _first_time(state, "step_started_at", "started_at", default=now)


def since_progress(state: dict, now: float) -> float:
    """Seconds since the last progress - the start, a weight change, the canary seen Ready (Flagger's measure)."""
    return now - _first_time(state, "progress_at", "step_started_at", "started_at", default=now)


def too_soon(state: dict, weight: int, interval: float, now: float) -> str | None:
    """Why no decision may be taken yet: less than one ``interval`` at the current weight (a CronJob's ``--once``)."""
    elapsed = now - step_started(state, now)
    if elapsed < interval:
        return f"{elapsed:.0f}s at {weight}% so far, less than interval {interval:g}s: not deciding yet"
    return None


@dataclass(frozen=True)
class Plan:
    """What the loop does after a check: ``advance``, ``promote``, ``abort``, ``hold`` or ``pause``."""

    action: str
    message: str
    failed: int
    weight: int | None = None  # advance: the next weight


def plan(state: dict, verdict: judge.Verdict, weights: list[int], weight: int, a: AnalysisConfig, now: float) -> Plan:
    """The decision after one check (pure: the tests drive it with verdicts and clocks).

    A comparison's sequential rejection aborts at once. A failed floor is a failed check,
    counted over the whole rollout; ``threshold`` of them abort. An undecided check holds
    the step until ``undecided_deadline`` after its start, then ``on_undecided``. A pass
    advances one step; at the last, promotes.
    """
    failed = int(state.get("failed", 0))
    summary = verdict.summary()
    if verdict.rejected:
        return Plan("abort", f"rejected by {', '.join(verdict.rejected)}: {summary}", failed)
    if verdict.floors_failed:
        failed += 1
        label = f"failed check {failed}/{a.threshold} ({', '.join(verdict.floors_failed)})"
        if failed >= a.threshold:
            return Plan("abort", f"{label}: {summary}", failed)
        return Plan("hold", f"{label} at {weight}%: {summary}", failed)
    if verdict.verdict == "undecided":
        waited = now - step_started(state, now)
        if waited >= a.undecided_deadline:
            label = f"undecided for {waited:.0f}s at {weight}% (undecided_deadline {a.undecided_deadline:.0f}s)"
            return Plan("abort" if a.on_undecided == "abort" else "pause", f"{label}: {summary}", failed)
        return Plan("hold", f"undecided {waited:.0f}s of {a.undecided_deadline:.0f}s at {weight}%: {summary}", failed)
    later = [w for w in weights if w > weight]
    if not later:
        return Plan("promote", f"all checks passed at {weight}%: {summary}", failed)
    return Plan("advance", f"{weight}% -> {later[0]}%: {summary}", failed, later[0])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Rollouts:
    """The operations, bound to one cluster target, registry and settings."""

    cluster: Cluster
    settings: RolloutConfig
    registry: Registry | None = None
    emit: Callable[[dict], None] = lambda event: None
    sleep: Callable[[float], None] = time.sleep
    gitops: GitOps | None = None  # steps become commits
    _backend: traffic.Serverless | traffic.Standard | GitOpsBackend | None = field(default=None, init=False)
    _lease: Lease | None = field(default=None, init=False)  # the lease held now (renewed while waiting)

    # -- plumbing ---------------------------------------------------------
    def backend(self, isvc: dict | None = None):
        if self._backend is None:
            s = self.settings
            direct = traffic.backend_for(
                self.cluster,
                isvc or self.cluster.read_isvc(),
                route=s.standard_route,
                gateway=s.gateway_name,
                gateway_namespace=s.gateway_namespace,
            )
            self._backend = direct
            if self.gitops is not None:
                from spamops.deploy.gitops import GitOpsBackend

                self._backend = GitOpsBackend(direct, self.gitops, timeout=s.analysis.progress_deadline)
        return self._backend

    def split(self) -> traffic.Split:
        isvc = self.cluster.read_isvc()
        return self.backend(isvc).split(isvc)

    def lease(self) -> Lease:
        self._lease = Lease(self.cluster, duration=self.settings.lease_seconds)
        return self._lease

    def _record(
        self, action: RolloutAction, split: traffic.Split, state: dict, reason: str, check: analysis.Check | None = None
    ) -> dict:
        """Event + (already patched) annotation + store entry; returns the event emitted on stdout."""
        version = split.canary_version or state.get("canary_version") or "?"
        weight = int(state.get("weight", 0))
        message = f"{version} at {weight}%: {reason}" if reason else f"{version} at {weight}%"
        isvc = self.cluster.read_isvc()
        self.cluster.event(isvc, REASONS[action], message, warning=action == "aborted")
        entry = RolloutEntry(
            rollout_id=state.get("id") or "unknown",
            seq=int(state.get("seq", 0)),
            inference_service=f"{self.cluster.target.namespace}/{self.cluster.target.name}",
            mode=split.mode,
            stable_version=split.stable_version if split.stable_version != version else state.get("stable_version"),
            canary_version=version,
            action=action,
            weight=weight,
            verdict=state.get("verdict"),
            reason=reason,
            check=check.to_json() if check else None,
        )
        if self.registry is not None and version != "?":
            RolloutLog(self.registry, version, entry.rollout_id).append(entry)
        event = {
            "event": REASONS[action],
            "at": entry.at,
            "version": version,
            "weight": weight,
            "verdict": state.get("verdict"),
            "message": message,
        }
        if check is not None:  # each signal's status, value, threshold and sample size
            event["signals"] = check.verdict.to_json()["signals"]
        self.emit(event)
        return event

    @staticmethod
    def _next(state: dict, **changes) -> dict:
        return {**state, **changes, "seq": int(state.get("seq", 0)) + 1, "at": _now()}

    # -- operations -------------------------------------------------------
    def start(self, card: Deployable, percent: int, *, held: Lease | None = None) -> traffic.Split:
        """Route ``percent`` to ``card``'s version as a canary (under ``held``, the caller's lease, if given)."""
        if not 0 <= percent <= 100:
            raise BadInputError(f"--percent {percent}: must be between 0 and 100")
        before = self.split()
        state = {**_first_state(card, before, percent, "started"), "gate": _gate_line(card)}
        with contextlib.nullcontext(held) if held else self.lease():
            split = self.backend().start(card.storage_uri, percent, state)
            self._record("started", split, state, f"canary started (stable {before.stable_version})")
        return split

    def promote(self, reason: str = "promoted by hand") -> traffic.Split:
        with self.lease():
            return self._promote(self.split().state, reason)

    def _promote(self, state: dict, reason: str, check: analysis.Check | None = None) -> traffic.Split:
        state = self._next(state, weight=100, verdict="promoted")
        split = self.backend().promote(state)
        self._record(
            "promoted",
            traffic.Split(**{**split.to_json(), "canary_version": state.get("canary_version")}),
            state,
            reason,
            check,
        )
        return split

    def abort(self, reason: str = "aborted by hand") -> traffic.Split:
        with self.lease():
            return self._abort(self.split().state, reason)

    def _abort(self, state: dict, reason: str, check: analysis.Check | None = None) -> traffic.Split:
        before = self.split()
        state = self._next(state, weight=0, verdict="aborted", reason=reason[:200])
        backend = self.backend()
        isvc = self.cluster.read_isvc()
        # Serverless after 100 %: the stable version comes back as a new revision; the canary serves until it is Ready.
        redeployed = isinstance(backend, traffic.Serverless) and backend.rolled_out(isvc)
        canary_revision = traffic.rolled_out_revision(isvc)
        split = backend.abort(state)
        if redeployed:
            reason = f"{reason}; {self._wait_for_stable(backend, before.stable_version, canary_revision)}"
        pointer = self._pointer_back(before.canary_version, reason)
        if pointer:
            reason = f"{reason}; production pointer back to {pointer}"
        self._record(
            "aborted",
            traffic.Split(**{**split.to_json(), "canary_version": before.canary_version}),
            state,
            reason,
            check,
        )
        return split

    def _wait_for_stable(self, backend: traffic.Serverless, stable: str | None, canary_revision: str | None) -> str:
        """Poll until the redeployed stable revision serves (up to ``progress_deadline``); what to record."""
        deadline = time.monotonic() + self.settings.analysis.progress_deadline
        while True:
            revision = backend.stable_serving(self.cluster.read_isvc(), canary_revision)
            if revision:
                return f"back on stable {stable} (revision {revision} Ready)"
            if time.monotonic() > deadline:
                return (
                    f"stable {stable} redeployed but not Ready within progress_deadline "
                    f"{self.settings.analysis.progress_deadline:.0f}s: the canary serves until it is"
                )
            if self._lease is not None:
                self._lease.renew()
            self.sleep(1.0)

    def _pointer_back(self, version: str | None, reason: str) -> str | None:
        """If the aborted version is production in the registry, move the pointer back, with the reason."""
        if self.registry is None or version is None:
            return None
        production = self.registry.production()
        if not production or production.version != version or not production.lineage:
            return None
        return self.registry.rollback(reason=f"canary aborted: {reason}").version

    def switch(self, card: Deployable, *, poll: float = 1.0) -> traffic.Split:
        """Blue/green: the new version at 0 %, wait until Ready, then 100 % in one step."""
        deadline = time.monotonic() + self.settings.analysis.progress_deadline
        with self.lease() as lease:
            before = self.split()
            state = _first_state(card, before, 0, "waiting")
            split = self.backend().start(card.storage_uri, 0, state)
            self._record("started", split, state, "blue/green: deployed at 0%, waiting for Ready")
            while not split.canary_ready:
                if time.monotonic() > deadline:
                    return self._abort(
                        state, f"not Ready within progress_deadline {self.settings.analysis.progress_deadline:.0f}s"
                    )
                self.sleep(poll)
                lease.renew()
                split = self.split()
            state = self._next(state, weight=100, verdict="switched")
            split = self.backend().set_weight(100, state)
            self._record("switched", split, state, f"all traffic to {card.version}; previous revision kept")
            return split

    def switch_back(self) -> traffic.Split:
        """Blue/green: all traffic back to the previous version at once (its revision was kept)."""
        with self.lease():
            split = self.split()
            if split.canary_uri is None:
                raise BadInputError(f"{self.cluster.target.where}: nothing to switch back from (no switch in progress)")
            state = self._next(split.state, weight=0, verdict="switched-back")
            split = self.backend().set_weight(0, state)
            self._record("switched-back", split, state, f"all traffic back to {split.stable_version}")
            return split

    # -- shadow deployment (spamops.deploy.shadow) --------------------------
    def shadow_start(self, card: Deployable, *, chart=None) -> traffic.Split:
        """Give the serving predictor ``card`` as its shadow (``SHADOW_STORAGE_URI``); only the primary answers."""
        from spamops.deploy import shadow

        where = self.cluster.target.where
        with self.lease():
            env = shadow.chart_env(card.storage_uri, chart)
            state: dict[str, Any] = {"id": _rollout_id(), "seq": 0, "weight": 0, "verdict": "shadowing"}
            self.cluster.update(
                lambda isvc: shadow.start_patch(isvc, self.split(), card.version, env, where, state["id"]),
                "started the shadow",
            )
            split = self.split()
            self._record_shadow("shadow-started", split, card.version, state, f"shadow of {split.stable_version}")
        return split

    def shadow_stop(self, reason: str = "stopped by hand", report: dict | None = None) -> traffic.Split:
        """Remove the shadow (and the env ``shadow_start`` added) from the predictor."""
        from spamops.deploy import shadow

        where = self.cluster.target.where
        with self.lease():
            isvc = self.cluster.read_isvc()
            version = traffic.version_of(shadow.shadow_of(isvc, where))
            if version is None:
                raise BadInputError(f"{where}: no shadow to stop (no {shadow.SHADOW_ENV} on the predictor)")
            rollout_id = (isvc["metadata"].get("annotations") or {}).get(shadow.SHADOW_ID) or _rollout_id()
            self.cluster.update(lambda fresh: shadow.stop_patch(fresh, where), "stopped the shadow")
            split = self.split()
            state = {"id": rollout_id, "seq": 1, "weight": 0, "verdict": "stopped"}
            self._record_shadow("shadow-stopped", split, version, state, reason, report)
        return split

    def _record_shadow(
        self,
        action: RolloutAction,
        split: traffic.Split,
        version: str,
        state: dict,
        reason: str,
        report: dict | None = None,
    ) -> None:
        self.cluster.event(self.cluster.read_isvc(), REASONS[action], f"{version}: {reason}")
        entry = RolloutEntry(
            rollout_id=state["id"],
            seq=state["seq"],
            inference_service=f"{self.cluster.target.namespace}/{self.cluster.target.name}",
            mode=split.mode,
            stable_version=split.stable_version,
            canary_version=version,
            action=action,
            weight=0,
            verdict=state["verdict"],
            reason=reason,
            check=report,
        )
        if self.registry is not None:
            RolloutLog(self.registry, version, entry.rollout_id).append(entry)
        self.emit({"event": REASONS[action], "at": entry.at, "version": version, "weight": 0, "message": reason})

    def _shadow_phase(self, prom: Prometheus, card: Deployable) -> bool:
        """Shadow ``card`` until the shadow gate passes (True) or fails or runs out of time (False)."""
        from spamops.deploy import shadow
        from spamops.prometheus import PrometheusError

        a = self.settings.analysis
        split = self.shadow_start(card)
        started = time.monotonic()
        why = "no check yet"
        while True:
            self.sleep(a.interval)
            elapsed = time.monotonic() - started
            try:
                found = shadow.report(prom, split.stable_version, card.version, f"{max(1, round(elapsed))}s")
                result, why = shadow.verdict(found, a.shadow_min_compared, a.shadow_min_agreement)
            except PrometheusError as exc:
                found, result, why = None, "inconclusive", str(exc)
            if result in ("pass", "fail") and found is not None:  # a verdict comes with its report
                self.shadow_stop(f"shadow gate {'passed' if result == 'pass' else 'failed'}: {why}", found.to_json())
                return result == "pass"
            if elapsed > a.shadow_deadline:
                self.shadow_stop(
                    f"shadow gate inconclusive after shadow_deadline {a.shadow_deadline:.0f}s: {why}",
                    found.to_json() if found else None,
                )
                return False
            self.emit({"event": "ShadowHeld", "at": _now(), "version": card.version, "weight": 0, "message": why})

    # -- the analysis loop ------------------------------------------------
    def auto(self, prom: Prometheus, *, card: Deployable | None = None, once: bool = False) -> str:
        """Check, decide, act until promoted or aborted (or after one check with ``once``).

        Returns the final verdict: ``promoted``, ``aborted`` or (``once``) the check's.
        """
        a = self.settings.analysis
        if a.interval >= self.settings.lease_seconds:
            raise BadInputError(
                f"rollout.analysis.interval {a.interval:g}s: must be shorter than rollout.lease_seconds "
                f"{self.settings.lease_seconds}s (the lease is renewed once per check)"
            )
        if refusal := a.refusal():
            raise BadInputError(refusal)
        weights = a.weights()
        settings = judge.Settings.from_config(a, len(weights))
        versions = tuple(v for v in (card.version if card else None, self.split().stable_version) if v)
        analysis.refuse_bad_selectors(prom, a.success_rate, versions)
        with self.lease() as lease:
            split = self.split()
            if split.canary_uri is None or (
                split.canary_percent == 0 and split.state.get("verdict") in ("aborted", "switched-back")
            ):
                if card is None:
                    raise BadInputError(
                        f"{self.cluster.target.where}: no canary in progress; name a VERSION to start one"
                    )
                if a.shadow_phase:
                    if once:
                        raise BadInputError(
                            "rollout.analysis.shadow_phase needs the continuous loop: run 'rollout auto VERSION' "
                            "without --once (or 'rollout shadow VERSION --duration' first)"
                        )
                    lease.release()
                    passed = self._shadow_phase(prom, card)
                    lease.acquire()
                    if not passed:
                        return "aborted"
                split = self.start(card, weights[0], held=lease)  # no gap for a second rollout to slip in
            elif card is not None and split.canary_version != card.version:
                raise BadInputError(
                    f"{self.cluster.target.where}: a canary of {split.canary_version} is in progress, not {card.version}; "
                    "promote or abort it first"
                )
            while True:
                if not once:  # a step is decided no sooner than one interval after its weight changed
                    self.sleep(a.interval)
                lease.renew()
                split = self.split()
                state = dict(split.state)
                if split.canary_uri is None:
                    raise SpamopsError(
                        f"{self.cluster.target.where}: the canary disappeared (promoted or aborted elsewhere)"
                    )
                verdict = self._step(prom, settings, weights, split, state, once=once)
                if verdict in ("promoted", "aborted", "paused") or once:
                    return verdict

    def _hold(self, split: traffic.Split, state: dict, verdict: str, message: str, check=None, **changes) -> str:
        state = self._next(state, verdict=verdict, **changes)
        self.cluster.update(
            lambda _: {"metadata": {"annotations": {traffic.STATE: _dumps(state)}}}, "recorded the verdict"
        )
        self._record("paused" if verdict == "paused" else "held", split, state, message, check)
        return verdict

    def _step(self, prom, settings: judge.Settings, weights: list[int], split, state: dict, *, once: bool) -> str:
        a = self.settings.analysis
        now = time.time()
        if state.get("verdict") == "paused":
            self.emit(
                {
                    "event": "CanaryPaused", "at": _now(), "version": split.canary_version,
                    "weight": int(split.canary_percent or 0), "verdict": "paused",
                    "message": f"paused at {split.canary_percent}% for a person: 'spamops rollout promote' or 'abort'",
                }
            )  # fmt: skip
            return "paused"
        if not split.canary_ready:
            waited = since_progress(state, now)
            if waited > a.progress_deadline:
                self._abort(
                    state,
                    f"canary not Ready within progress_deadline {a.progress_deadline:.0f}s ({waited:.0f}s since its last progress)",
                )
                return "aborted"
            return self._hold(
                split,
                state,
                "waiting",
                f"waiting for the canary to become Ready ({waited:.0f}s of {a.progress_deadline:.0f}s)",
            )
        state = {**state, "progress_at": now}
        if self.backend().follow(self.cluster.read_isvc()):
            # Standard mode: the canary just got its share of the route; its step starts now.
            return self._hold(
                split,
                state,
                "waiting",
                f"canary Ready: routing {split.canary_percent}% to it from now",
                step_started_at=now,
            )
        weight = int(split.canary_percent or 0)
        step_start = step_started(state, now)
        if message := too_soon(state, weight, a.interval, now):
            self.emit(
                {"event": "CanaryWaiting", "at": _now(), "version": split.canary_version, "weight": weight,
                 "verdict": "waiting", "message": message}
            )  # fmt: skip
            return "waiting"
        windows = analysis.Windows(_first_time(state, "started_at", default=step_start), step_start, now)
        check = analysis.run_check(prom, a.success_rate, settings, split.stable_version, split.canary_version, windows)
        decision = plan(state, check.verdict, weights, weight, a, now)
        state = {**state, "failed": decision.failed}
        if decision.action == "abort":
            self._abort(state, decision.message, check)
            return "aborted"
        if decision.action == "promote":
            self._promote(state, decision.message, check)
            return "promoted"
        if decision.action == "advance" and decision.weight is not None:
            state = self._next(
                state, weight=decision.weight, step=weights.index(decision.weight), verdict="pass",
                step_started_at=time.time(), progress_at=time.time(),
            )  # fmt: skip
            self.backend().set_weight(decision.weight, state)
            self._record("advanced", split, state, decision.message, check)
            return "pass"
        if decision.action == "pause":
            return self._hold(split, state, "paused", f"paused: {decision.message}", check)
        return self._hold(
            split, state, check.verdict.verdict if not check.verdict.floors_failed else "fail", decision.message, check
        )


def _rollout_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def _gate_line(card: Deployable) -> str:
    gate = getattr(card, "gate", None)  # a production pointer carries no gate; its card does
    if gate is None:
        return "gate: not recorded"
    rules = "; ".join(r.detail or r.rule for r in gate.rules[:3])
    return f"gate: {'passed' if gate.passed else 'refused'}" + (f" ({rules})" if rules else "")


def _dumps(state: dict) -> str:
    import json

    return json.dumps(state, sort_keys=True)


def card_or_production(registry, version: str | None) -> ModelCard:
    """The card of ``version``, or production's when none is named."""
    if version:
        return registry.card(version)
    production = registry.production()
    if production is None:
        raise NotFoundError(
            f"{registry.store.uri(registry.model_name)}: nothing in production to roll out; name a VERSION"
        )
    return registry.card(production.version)
