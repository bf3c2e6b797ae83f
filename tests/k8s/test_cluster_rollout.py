"""The rollout acceptance scenarios on the test cluster, in both KServe modes, through the CLI.

Real parts: the test cluster (kube-apiserver, kube-controller-manager,
kube-scheduler, KWOK nodes, the KServe v0.20.0 manager and its webhooks), three
versions trained here on the shared real data, one real predictor process per
version, real Prometheus scraping them every second, and ``spamops rollout``
run as a user runs it.  Stand-ins, for the two parts that cannot run here:

* the **data plane** - the traffic driver (tests/deploy/deployhelpers.py) sends
  requests to the predictor processes in the proportion the cluster declares,
  read by :mod:`declared_routes` (HTTPRoute weights and Ready pods in Standard
  mode, KServe's ``status.components.predictor.traffic`` in Serverless mode);
* **Knative's controllers** (:mod:`knative_standin`) - write the Knative
  Service status KServe turns into the InferenceService's status (Serverless).

Each mode gets its own namespace, store copy and InferenceService (rendered by
``spamops render isvc``); the scenarios run in order on it, each starting from
the stable version the previous one left.  Intervals are seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from argosync import ArgoSync, git, init_repo
from declared_routes import HTTPROUTE, KSERVE, DeclaredRoutes, version_of
from deployhelpers import TrafficDriver, start_predictors, train_fleet
from k8shelpers import REPO, Kube, wait_until
from knative_standin import KnativeStandIn

from spamops.cli import main
from spamops.deploy.traffic import dns_name
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops_dev.ports import free_port
from spamops_dev.prometheus import Prometheus

pytestmark = [pytest.mark.realdata, pytest.mark.monitoring]

ISVC = "inferenceservices.serving.kserve.io"
ROUTE = "httproutes.gateway.networking.k8s.io"
INTERVAL = 8  # seconds per check (and the metrics window)
SLOW = 120  # reconcile loops on a loaded 2-core machine
BUCKET = "s3://spamops/models"
ANALYSIS = {
    "interval": INTERVAL,
    "threshold": 1,
    "undecided_deadline": 3 * INTERVAL,
    "progress_deadline": 90,
    "min_requests": 20,
    "min_instances": 20,
    # The machine is shared with compilers: latency is not what these scenarios test.
    "max_latency_seconds": 2.0,
    "max_latency_ratio": 50.0,
}


# ------------------------------------------------------------------ session parts
@pytest.fixture(scope="module")
def fleet(real_data: Path, tmp_path_factory) -> dict:
    return train_fleet(real_data, tmp_path_factory.mktemp("cluster-fleet"))


@pytest.fixture(scope="module")
def predictors(fleet, tmp_path_factory):
    started = start_predictors(fleet, tmp_path_factory.mktemp("cluster-predictors"))
    yield started
    for server in started.values():
        server.stop()


class Routing:
    """The driver's routes: whichever mode's :class:`DeclaredRoutes` is in force."""

    def __init__(self) -> None:
        self.reader: DeclaredRoutes | None = None

    def routes(self):
        return self.reader.routes() if self.reader else []


@pytest.fixture(scope="module")
def routing() -> Routing:
    return Routing()


@pytest.fixture(scope="module")
def driver(fleet, predictors, routing):
    d = TrafficDriver({v: p.url for v, p in predictors.items()}, routing.routes, fleet["instances"], rate=50.0)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def prometheus(predictors, driver, tmp_path_factory):
    targets = [p.url.removeprefix("http://") for p in predictors.values()] + [driver.target]
    server = Prometheus(tmp_path_factory.mktemp("cluster-prometheus"), targets).start()
    server.wait_for_targets_up(len(targets))
    yield server
    server.stop()


# --------------------------------------------------------------------- per mode
@dataclass
class Env:
    """One mode's InferenceService and what the scenarios need to drive and observe it."""

    mode: str
    namespace: str
    kube: Kube
    store: str
    config: Path
    fleet: dict
    driver: TrafficDriver
    routes: DeclaredRoutes
    knative: KnativeStandIn | None = None
    sent_before: dict = field(default_factory=dict)

    @property
    def args(self) -> tuple:
        return ("--config", self.config, "--kubeconfig", self.kube.kubeconfig)

    def isvc(self) -> dict:
        out = self.kube.kubectl("get", ISVC, "spam", "-n", self.namespace, "-o", "json").stdout
        return json.loads(out)

    def route(self) -> dict | None:
        res = self.kube.kubectl("get", ROUTE, "spam-spamops-canary", "-n", self.namespace, "-o", "json", check=False)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def declared(self) -> dict:
        """The spec's canary share and the routed weights by version (HTTPRoute / KServe traffic status)."""
        return self.declared_by(self.isvc(), self.route() if self.mode == "standard" else None)

    def declared_by(self, isvc: dict, route: dict | None) -> dict:
        """:meth:`declared` of these objects: the InferenceService and (Standard mode) spamops' HTTPRoute."""
        if self.mode == "standard":
            (entry,) = isvc["spec"].get("canary") or [None]
            spec = entry["trafficPercent"] if entry else None
            names = {f"spam-{e['predictor']['name']}-predictor": _uri(e["predictor"]) for e in isvc["spec"].get("canary") or []}  # fmt: skip
            name = isvc["spec"]["predictor"].get("name")
            names[f"spam-{name}-predictor" if name else "spam-predictor"] = _uri(isvc["spec"]["predictor"])
            routed = {}
            for rule in (route or {}).get("spec", {}).get("rules", []):
                for b in rule["backendRefs"]:
                    routed[version_of(names.get(b["name"]))] = b["weight"]
            return {"canary_percent": spec, "routed": routed}
        predictor = isvc["spec"]["predictor"]
        traffic = ((isvc.get("status") or {}).get("components") or {}).get("predictor", {}).get("traffic") or []
        routed = {}
        for t in traffic:
            template = self.knative.template("spam-predictor", self.namespace, t["revisionName"])
            routed[version_of(_uri((template or {}).get("spec") or {}))] = t["percent"]
        return {"canary_percent": predictor.get("canaryTrafficPercent"), "routed": routed}

    def events(self) -> list[tuple[str, str]]:
        out = self.kube.kubectl(
            "get", "events", "-n", self.namespace, "--field-selector", "involvedObject.name=spam", "-o", "json"
        ).stdout  # fmt: skip
        items = sorted(json.loads(out)["items"], key=lambda e: e["metadata"]["name"])  # named by time
        return [(e["reason"], e["message"]) for e in items if e["source"].get("component") == "spamops-rollout"]

    def records(self, version: str) -> list[list[dict]]:
        """The store's rollout records of ``version``: one list of entries per rollout, oldest first."""
        reg = Registry(open_store(self.store), "spam")
        groups: dict[str, list[dict]] = {}
        for key in sorted(reg.store.list(f"spam/{version}/rollouts/")):
            entry = json.loads(reg.store.get(key).data)
            groups.setdefault(entry["rollout_id"], []).append(entry)
        return list(groups.values())

    def production(self):
        return Registry(open_store(self.store), "spam").production()

    def stable(self) -> str:
        return version_of(_uri(self.isvc()["spec"]["predictor"])) if self.mode == "standard" else self._kn_stable()

    def _kn_stable(self) -> str:
        notes = self.isvc()["metadata"].get("annotations") or {}
        if self.isvc()["spec"]["predictor"].get("canaryTrafficPercent") is None:
            return version_of(_uri(self.isvc()["spec"]["predictor"]))
        return version_of(notes.get("rollout.spamops.io/stable-storage-uri"))


def _uri(predictor: dict) -> str | None:
    for c in predictor.get("containers") or []:
        if c.get("name") == "kserve-container":
            return {e["name"]: e.get("value") for e in c.get("env") or []}.get("STORAGE_URI")
    return None


def _run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module", params=["standard", "serverless"])
def env(request, cluster_kube: Kube, fleet, driver, prometheus, routing, tmp_path_factory):
    mode = request.param
    kube = cluster_kube
    ns = f"rollout-{mode}"
    kube.ensure_namespace(ns)
    kube.kubectl("create", "serviceaccount", "spamops-predictor", "-n", ns, check=False)
    # A private copy of the trained store (the scenarios move its production pointer) whose cards name
    # the versions' S3 location, as a store synced to S3 would: the chart accepts only URIs KServe's
    # storage initializer can fetch. The predictor processes serve the same versions from local copies.
    tmp = tmp_path_factory.mktemp(f"store-{mode}")
    store = tmp / "store"
    shutil.copytree(fleet["store"], store)
    for path in store.rglob("*.json"):
        text = path.read_text().replace(f"file://{fleet['store']}", BUCKET)
        path.write_text(text.replace(str(fleet["store"]), str(store)))
    config = tmp / "rollout.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": str(store),
                "rollout": {
                    "namespace": ns,
                    "inference_service": "spam",
                    "prometheus_url": prometheus.url,
                    "lease_seconds": 20,
                    "analysis": ANALYSIS,
                },
            }
        )
    )
    code, rendered, err = _run("render", "isvc", "--config", config, "--mode", mode, "--namespace", ns)
    assert code == 0, err
    kube.kubectl("apply", "--server-side", "--field-manager=spamops-tests", "-f", "-", input=rendered)
    knative = KnativeStandIn(kube) if mode == "serverless" else None
    stop_knative = knative.run("spam-predictor", ns) if knative else None
    routes = DeclaredRoutes(kube.kubeconfig, ns, knative=knative).start()
    routing.reader = routes
    e = Env(mode, ns, kube, str(store), config, fleet, driver, routes, knative)
    ready = wait_until(lambda: _ready(e), timeout=SLOW)
    assert ready, json.dumps(e.isvc().get("status"), indent=1)
    assert wait_until(lambda: [b.version for b in routes.refresh() if b.ready] == [fleet["stable"]], timeout=SLOW), (
        routes.current,
        routes.error,
    )
    yield e
    routing.reader = None
    routes.stop()
    if stop_knative:
        stop_knative.set()
    kube.kubectl("delete", ISVC, "spam", "-n", ns, "--wait=true", "--timeout=120s", check=False, timeout=150)
    kube.kubectl("delete", f"{ROUTE},leases.coordination.k8s.io,events", "--all", "-n", ns, check=False)


def _conditions(e: Env) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (e.isvc().get("status") or {}).get("conditions", [])}


def _ready(e: Env) -> bool:
    """KServe's verdict on the predictor (Serverless: from the Knative status the stand-in writes)."""
    return _conditions(e).get("Ready" if e.mode == "standard" else "PredictorReady") == "True"


class AutoRun:
    """``spamops rollout auto`` in its own process (as a CI job runs it), with every state the cluster
    declared meanwhile: watches of the InferenceService (and, in Standard mode, spamops' HTTPRoute)
    deliver each change the API server made, in order, so no short-lived step can be missed."""

    def __init__(self, e: Env, *args: str) -> None:
        self.env, self.seen, self.gaps = e, [], []  # gaps: watch restarts (changes in between may be unseen)
        self._objects: dict[str, dict | None] = {"isvc": None, "route": None}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        kinds = {"isvc": (KSERVE, "spam"), **({"route": (HTTPROUTE, "spam-spamops-canary")} if e.mode == "standard" else {})}  # fmt: skip
        listed = {kind: self._list(api, name) for kind, (api, name) in kinds.items()}
        for kind, (items, _) in listed.items():
            self._objects[kind] = items[0] if items else None
        self._record()
        self._watches = [
            threading.Thread(target=self._watch, args=(kind, *kinds[kind], version), daemon=True)
            for kind, (_, version) in listed.items()
        ]
        for thread in self._watches:
            thread.start()
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        cmd = [sys.executable, "-m", "spamops", "rollout", "auto", *map(str, args), *map(str, e.args), "-o", "json"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def _api(self):
        from kubernetes import client, config

        return client.CustomObjectsApi(config.new_client_from_config(config_file=str(self.env.kube.kubeconfig)))

    def _list(self, api: tuple[str, str, str], name: str) -> tuple[list[dict], str]:
        listed = self._api().list_namespaced_custom_object(
            *api[:2], self.env.namespace, api[2], field_selector=f"metadata.name={name}"
        )
        return listed["items"], listed["metadata"]["resourceVersion"]

    def _watch(self, kind: str, api: tuple[str, str, str], name: str, version: str) -> None:
        from kubernetes import watch

        custom = self._api()
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    custom.list_namespaced_custom_object, *api[:2], self.env.namespace, api[2],
                    field_selector=f"metadata.name={name}", resource_version=version, timeout_seconds=5,
                ):  # fmt: skip
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    with self._lock:
                        self._objects[kind] = None if event["type"] == "DELETED" else obj
                    self._record()
                    if self._stop.is_set():
                        stream.stop()
            except Exception as exc:  # noqa: BLE001 - say so in the test's output, start over from a fresh list
                self.gaps.append(f"{kind} watch: {type(exc).__name__}: {exc}")
                items, version = self._list(api, name)
                with self._lock:
                    self._objects[kind] = items[0] if items else None
                self._record()

    def _record(self) -> None:
        with self._lock:
            if self._objects["isvc"] is None:
                return
            now = self.env.declared_by(self._objects["isvc"], self._objects["route"])
            if not self.seen or self.seen[-1] != now:
                self.seen.append(now)

    def wait(self, timeout: float = 300) -> tuple[int, list[dict], str]:
        out, err = self.proc.communicate(timeout=timeout)
        # The watches have delivered everything the run wrote once they show what the cluster holds now.
        assert wait_until(lambda: self.seen and self.seen[-1] == self.env.declared(), timeout=30), self.seen
        self._stop.set()
        for thread in self._watches:
            thread.join(timeout=10)
        return self.proc.returncode, [json.loads(line) for line in out.splitlines() if line.strip()], err


def _canary_weights(seen: list[dict]) -> list[int]:
    """The distinct canary shares the spec declared, in order."""
    out: list[int] = []
    # Serverless keeps an aborted canary's spec at 0 %: the run starts from there.
    while seen and seen[0]["canary_percent"] == 0:
        seen = seen[1:]
    for s in seen:
        if s["canary_percent"] is not None and (not out or out[-1] != s["canary_percent"]):
            out.append(s["canary_percent"])
    return out


def _only_routed_to(e: Env, target: str, other: str, requests: int = 50) -> None:
    """The data plane sends ``target`` everything once its routing table says so: after the table
    holds only ``target`` and a request to it completed (the driver sends one at a time, so every
    request picked from the old table is done by then), ``requests`` more all go to ``target``."""
    assert wait_until(lambda: [b.version for b in e.routes.current if b.weight > 0] == [target], timeout=SLOW), (
        e.routes.current
    )
    switched = e.driver.sent.get(target, 0)
    assert wait_until(lambda: e.driver.sent.get(target, 0) > switched, timeout=SLOW), e.driver.sent
    sent = dict(e.driver.sent)
    assert wait_until(lambda: e.driver.sent.get(target, 0) >= sent.get(target, 0) + requests, timeout=SLOW)
    assert e.driver.sent.get(other, 0) == sent.get(other, 0), (sent, e.driver.sent)


def _new_events(e: Env, before: int) -> list[tuple[str, str]]:
    return e.events()[before:]


# ------------------------------------------------------------------ scenarios
def test_a_healthy_canary_advances_10_25_50_100_and_is_promoted(env: Env):
    e, f = env, env.fleet
    assert e.stable() == f["stable"]
    # The pipeline's promotion. This seed misses the gate's margin by a hair (same data, same quality):
    # forced, with the reason recorded - the traffic is what this scenario is about.
    code, _, err = _run("promote", f["same"], "--force", "--reason", "same data, another seed", "--config", e.config)  # fmt: skip
    assert code == 0, err
    before = len(e.events())

    run = AutoRun(e, f["same"])
    code, events, err = run.wait()

    assert code == 0, err
    assert _canary_weights(run.seen)[:4] == [10, 25, 50, 100], run.seen
    # Each declared step was routed as declared: HTTPRoute weights (Standard) / KServe's traffic status (Serverless).
    routed = {s["canary_percent"]: s["routed"] for s in run.seen if s["routed"].get(f["same"]) == s["canary_percent"]}
    for weight in (10, 25, 50):
        assert routed.get(weight) == {f["stable"]: 100 - weight, f["same"]: weight}, run.seen
    reasons = [ev["event"] for ev in events]
    assert reasons[0] == "CanaryStarted" and reasons[-1] == "CanaryPromoted", reasons
    advanced = [ev["message"] for ev in events if ev["event"] == "CanaryAdvanced"]
    assert [m.split(": ", 1)[1].split(":")[0] for m in advanced] == ["10% -> 25%", "25% -> 50%", "50% -> 100%"]
    assert "all checks passed at 100%" in events[-1]["message"]
    assert [r for r, _ in _new_events(e, before)] == reasons  # the same decisions as Kubernetes Events
    # The promoted spec: the canary is the stable predictor now, all traffic on it.
    isvc = e.isvc()
    assert version_of(_uri(isvc["spec"]["predictor"])) == f["same"]
    if e.mode == "standard":
        assert "canary" not in isvc["spec"] and isvc["spec"]["predictor"]["name"] == dns_name(f["same"])
        assert e.declared()["routed"] == {f["same"]: 100}
    else:
        assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
        assert wait_until(lambda: e.declared()["routed"] == {f["same"]: 100}, timeout=SLOW), e.declared()
    state = json.loads(isvc["metadata"]["annotations"]["rollout.spamops.io/state"])
    assert (state["verdict"], state["weight"]) == ("promoted", 100)
    (record,) = e.records(f["same"])
    assert [r["action"] for r in record] == reasons_to_actions(reasons)
    assert record[-1]["check"]["verdict"] == "pass" and record[-1]["stable_version"] == f["stable"]
    # At 100 % the stable side gets no new requests: the comparisons use the whole rollout's evidence, which
    # holds the stable side's requests of the earlier steps; the floors judge the canary's own last step.
    last = record[-1]["check"]
    assert last["evidence"]["stable"]["requests"] >= ANALYSIS["min_requests"]
    assert last["evidence"]["canary_step"]["requests"] < last["evidence"]["canary"]["requests"]
    assert {s["name"]: s["status"] for s in last["signals"]}["success_rate"] == "pass"
    assert e.production().version == f["same"]


def reasons_to_actions(reasons: list[str]) -> list[str]:
    return [{"CanaryStarted": "started", "CanaryAdvanced": "advanced", "CanaryHeld": "held",
             "CanaryPromoted": "promoted", "CanaryAborted": "aborted"}[r] for r in reasons]  # fmt: skip


def test_a_canary_that_flags_far_more_spam_is_aborted_at_the_first_step_and_production_goes_back(env: Env):
    e, f = env, env.fleet
    stable = e.stable()
    assert stable == f["same"]
    code, _, err = _run("promote", f["spammy"], "--force", "--reason", "noisy labels, forced for the test", "--config", e.config)  # fmt: skip
    assert code == 0, err
    assert e.production().version == f["spammy"]
    before = len(e.events())

    run = AutoRun(e, f["spammy"])
    code, events, err = run.wait()

    assert code == 1, err
    assert _canary_weights(run.seen) in ([10], [10, 0]), run.seen  # never advanced
    assert "CanaryAdvanced" not in [ev["event"] for ev in events]
    aborted = events[-1]
    assert aborted["event"] == "CanaryAborted", events
    assert "rejected by spam_rate" in aborted["message"] and "spam_rate fail" in aborted["message"]
    assert f"production pointer back to {stable}" in aborted["message"]
    ((reason, message),) = [ev for ev in _new_events(e, before) if ev[0] == "CanaryAborted"]
    assert message == aborted["message"]
    pointer = e.production()
    assert (pointer.version, pointer.action) == (stable, "rollback")
    assert pointer.reason.startswith("canary aborted: rejected by spam_rate")
    (record,) = e.records(f["spammy"])
    signals = {s["name"]: s for s in record[-1]["check"]["signals"]}
    assert record[-1]["action"] == "aborted" and signals["spam_rate"]["value"] > 0.1
    assert signals["spam_rate"]["unit"] == "instances" and signals["spam_rate"]["canary_n"] >= 20
    assert {r["weight"] for r in record[:-1]} == {10}
    # All traffic back on the stable version.
    isvc = e.isvc()
    if e.mode == "standard":
        assert "canary" not in isvc["spec"]
        assert e.declared()["routed"] == {stable: 100}
    else:
        assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
        assert wait_until(lambda: e.declared()["routed"].get(stable) == 100, timeout=SLOW), e.declared()


def test_a_canary_that_answers_errors_is_aborted_on_the_success_rate(env: Env):
    """KWOK reports its pods Ready, but its predictor refuses the damaged artifact: the data plane gets 503s."""
    e, f = env, env.fleet
    stable = e.stable()

    run = AutoRun(e, f["broken"])
    code, events, err = run.wait()

    assert code == 1, err
    assert "CanaryAdvanced" not in [ev["event"] for ev in events]
    assert events[-1]["event"] == "CanaryAborted", events
    # Counted by the predictor provider: the broken predictor's own 503s, joined to its version.
    assert "success_rate fail 0 vs 0.99" in events[-1]["message"], events[-1]["message"]
    assert _canary_weights(run.seen) in ([10], [10, 0]), run.seen
    (record,) = e.records(f["broken"])
    signals = {s["name"]: s for s in record[-1]["check"]["signals"]}
    assert record[-1]["action"] == "aborted" and signals["success_rate"]["value"] == 0.0
    assert e.production().version == stable  # never production: the pointer does not move
    assert wait_until(lambda: e.declared()["routed"].get(stable) == 100, timeout=SLOW), e.declared()


def test_no_traffic_is_inconclusive_never_promoted_and_aborted_after_the_limit_and_a_second_rollout_fails_fast(
    env: Env, cli
):
    e, f = env, env.fleet
    canary = f["stable"]  # same quality as the serving version
    assert e.stable() != canary
    before = len(e.events())
    e.driver.paused.set()
    try:
        run = AutoRun(e, canary)
        assert wait_until(lambda: any(s["canary_percent"] == 10 for s in run.seen), timeout=SLOW), run.seen
        second = cli("rollout", "auto", *e.args)
        code, events, err = run.wait()
    finally:
        e.driver.paused.clear()

    assert second.code == 1, second.err
    assert "another rollout holds lease" in second.err and f"-{run.proc.pid}-" in second.err, second.err
    assert code == 1, err
    undecided = [ev["message"] for ev in events if ev["event"] == "CanaryHeld" and ": undecided " in ev["message"]]
    assert undecided and all("success_rate undecided" in m for m in undecided), events
    assert all("requests this step (< min_requests 20)" in m or "series" in m for m in undecided), undecided
    assert events[-1]["event"] == "CanaryAborted" and "(undecided_deadline 24s)" in events[-1]["message"]
    assert "CanaryAdvanced" not in [ev["event"] for ev in events] and "CanaryPromoted" not in [
        ev["event"] for ev in events
    ]
    assert _canary_weights(run.seen) in ([10], [10, 0]), run.seen
    assert [r for r, _ in _new_events(e, before)][-1] == "CanaryAborted"
    (record,) = e.records(canary)[-1:]
    assert record[-1]["action"] == "aborted" and "undecided for" in record[-1]["reason"]


def test_prometheus_unreachable_never_advances_says_so_and_aborts_after_the_limit(env: Env):
    e, f = env, env.fleet
    canary = f["stable"]
    dead = f"http://127.0.0.1:{free_port()}"

    run = AutoRun(e, canary, "--prometheus", dead)
    code, events, err = run.wait()

    assert code == 1, err
    held = [ev["message"] for ev in events if ev["event"] == "CanaryHeld" and ": undecided " in ev["message"]]
    assert held, events
    assert all(f"Prometheus {dead} is unreachable (" in m for m in held), held
    assert events[-1]["event"] == "CanaryAborted" and "(undecided_deadline 24s)" in events[-1]["message"]
    assert "CanaryAdvanced" not in [ev["event"] for ev in events]
    assert _canary_weights(run.seen) in ([10], [10, 0]), run.seen


@pytest.fixture
def gitops(env: Env, tmp_path):
    """A GitOps repo whose first commit holds the stable version, synced to the cluster by :class:`ArgoSync`."""
    if env.mode == "standard":
        pytest.skip("GitOps write-back is Serverless only: the chart has no spec.canary[] values (docs/rollout.md)")
    values = {
        "namespace": {"name": env.namespace},
        "predictor": {"storageUri": f"{BUCKET}/spam/{env.stable()}/", "canaryTrafficPercent": None, "keepLiveModel": False},
    }  # fmt: skip
    remote, repo = init_repo(tmp_path, values)
    # The InferenceService was applied before Argo CD managed it: the first sync takes its fields over.
    with ArgoSync(env.kube, remote, tmp_path, force=True) as sync:
        assert sync.wait_synced(timeout=SLOW), sync.error
        assert wait_until(lambda: _ready(env) and env.declared()["routed"] == {env.stable(): 100}, timeout=SLOW)
        yield repo, remote, sync


def _commits(remote: Path, since: str) -> list[list[str]]:
    """The remote's commit messages after ``since``, oldest first, each as its lines."""
    shas = git(remote, "rev-list", "--reverse", f"{since}..HEAD").split()
    return [git(remote, "log", "-1", "--format=%B", sha).splitlines() for sha in shas]


def test_gitops_auto_commits_every_analysed_step_and_argo_sync_applies_exactly_that(env: Env, gitops):
    """``make deploy-canary GITOPS=1`` then ``rollout auto --gitops``: a commit per decision, each synced."""
    e, f = env, env.fleet
    repo, remote, sync = gitops
    stable, canary = e.stable(), f["stable"] if e.stable() != f["stable"] else f["same"]
    code, _, err = _run("promote", canary, "--force", "--reason", "same data, another seed", "--config", e.config)
    assert code == 0, err
    base = git(remote, "rev-parse", "HEAD")
    started = subprocess.run(
        ["make", "-s", "deploy-canary", f"VERSION={canary}", "PERCENT=10", "GITOPS=1", f"GITOPS_DIR={repo}", "GITOPS_PUSH=1",
         f"VENV={sys.prefix}", f"STORE={e.store}", f"CONFIG={e.config}"],
        cwd=REPO, capture_output=True, text=True, timeout=SLOW,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "KUBECONFIG": str(e.kube.kubeconfig)},
    )  # fmt: skip
    assert started.returncode == 0, started.stderr

    run = AutoRun(e, canary, "--gitops", repo, "--push")
    code, events, err = run.wait()

    assert code == 0, (err, events, run.seen)
    assert [ev["event"] for ev in events][-1] == "CanaryPromoted", events
    messages = _commits(remote, base)
    assert {m[0] for m in messages} == {"build: automatic update of spamops"}
    details = [m[2] for m in messages]
    assert details == [
        f"updates model spamops version '{stable}' to '{canary}'",
        f"canary {canary} to 25%",
        f"canary {canary} to 50%",
        f"canary {canary} to 100%",
        f"promote {canary}",
    ], messages
    # Argo CD's sync applied each commit, and rendering each commit gives the weight recorded for it.
    shas = git(remote, "rev-list", "--reverse", f"{base}..HEAD").split()
    assert [sync.applied.get(sha, "not synced") for sha in shas] == [10, 25, 50, 100, None], sync.applied
    for sha in shas:
        assert sync.render(sha)["spec"]["predictor"].get("canaryTrafficPercent") == sync.applied[sha]
    (record,) = e.records(canary)[-1:]
    assert [r["weight"] for r in record if r["action"] == "advanced"] == [25, 50, 100]
    assert _canary_weights(run.seen)[:4] == [10, 25, 50, 100], run.seen
    assert version_of(_uri(e.isvc()["spec"]["predictor"])) == canary
    assert wait_until(lambda: e.declared()["routed"] == {canary: 100}, timeout=SLOW), e.declared()


def test_gitops_auto_aborts_a_spammy_canary_with_one_revert_commit(env: Env, gitops):
    e, f = env, env.fleet
    repo, remote, sync = gitops
    stable = e.stable()
    code, _, err = _run("promote", f["spammy"], "--force", "--reason", "noisy labels, forced for the test", "--config", e.config)  # fmt: skip
    assert code == 0, err
    base = git(remote, "rev-parse", "HEAD")
    assert _run("rollout", "start", f["spammy"], "--percent", 10, "--gitops", repo, "--push", *e.args)[0] == 0

    run = AutoRun(e, f["spammy"], "--gitops", repo, "--push")
    code, events, err = run.wait()

    assert code == 1, err
    assert events[-1]["event"] == "CanaryAborted" and "spam_rate fail" in events[-1]["message"], events
    messages = _commits(remote, base)
    assert len(messages) == 2, messages  # the start, then one revert: no step was ever committed past 10 %
    assert messages[0][2] == f"updates model spamops version '{stable}' to '{f['spammy']}'"
    assert messages[1][2].startswith(f"revert canary {f['spammy']}: rejected by spam_rate"), messages
    assert git(remote, "diff", base, "HEAD") == ""  # git holds the stable version again, exactly
    assert wait_until(lambda: sync.synced == git(remote, "rev-parse", "HEAD"), timeout=SLOW), sync.error
    assert version_of(_uri(e.isvc()["spec"]["predictor"])) == stable
    assert e.production().version == stable
    assert wait_until(lambda: e.declared()["routed"].get(stable) == 100, timeout=SLOW), e.declared()


def test_blue_green_switch_and_switch_back_with_the_status_table_and_json(env: Env, cli):
    e, f = env, env.fleet
    stable = e.stable()
    green = f["stable"] if stable != f["stable"] else f["same"]  # a healthy version that is not serving
    before = len(e.events())

    switched = cli("rollout", "switch", green, *e.args, "-o", "json")

    assert switched.code == 0, switched.err
    doc = switched.json()
    assert (doc["stable_version"], doc["canary_version"], doc["canary_percent"]) == (stable, green, 100)
    assert wait_until(lambda: e.declared()["routed"].get(green) == 100, timeout=SLOW), e.declared()
    assert e.declared()["routed"].get(stable, 0) == 0
    _only_routed_to(e, green, stable)
    status = cli("rollout", "status", *e.args)
    header, row = status.out.splitlines()
    assert header.split() == ["NAME", "MODE", "READY", "STABLE", "STABLE%", "CANARY", "CANARY%", "ROUTED%", "STEP", "VERDICT"]  # fmt: skip
    ready = str(_conditions(e).get("Ready") == "True")
    assert row.split() == ["spam", e.mode, ready, stable, "0", green, "100", "100", "0", "switched"]
    as_json = cli("rollout", "status", *e.args, "-o", "json").json()
    assert (as_json["canary_percent"], as_json["routed_canary_percent"], as_json["canary_ready"]) == (100, 100, True)

    back = cli("rollout", "switch-back", *e.args)

    assert back.code == 0, back.err
    assert wait_until(lambda: e.declared()["routed"].get(stable) == 100, timeout=SLOW), e.declared()
    assert [r for r, _ in _new_events(e, before)] == ["CanaryStarted", "Switched", "SwitchedBack"]
    (record,) = e.records(green)[-1:]
    assert [r["action"] for r in record] == ["started", "switched", "switched-back"]
    row = cli("rollout", "status", *e.args).out.splitlines()[1].split()
    if e.mode == "standard":  # the green predictor stays deployed at 0 %, ready for the next switch
        assert e.declared()["canary_percent"] == 0
        assert row[3:8] == [stable, "100", green, "0", "0"] and row[-1] == "switched-back"
    else:
        # KServe marked green's revision rolled out at 100 %, so canaryTrafficPercent 0 would route its `prev`
        # target - green itself. Switch-back deploys the blue version's URI again instead; Knative routes it.
        isvc = e.isvc()
        assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
        assert version_of(_uri(isvc["spec"]["predictor"])) == stable
        assert row[3:5] == [stable, "100"] and row[-1] == "switched-back"
    _only_routed_to(e, stable, green)


def test_a_serverless_abort_after_100_percent_records_back_on_stable_only_once_its_revision_is_ready(env: Env, cli):
    """After 100 % the stable version comes back as a new revision: the record waits for it to be Ready."""
    if env.mode == "standard":
        pytest.skip("Standard mode's stable Deployment never goes away: its abort is immediate")
    e, f = env, env.fleet
    stable = e.stable()
    green = f["stable"] if stable != f["stable"] else f["same"]
    assert cli("rollout", "switch", green, *e.args).code == 0
    assert wait_until(lambda: e.declared()["routed"].get(green) == 100, timeout=SLOW), e.declared()

    aborted = cli("rollout", "abort", *e.args, "--reason", "abort after 100 %")

    assert aborted.code == 0, aborted.err
    routed_when_recorded = e.declared()["routed"]
    (record,) = e.records(green)[-1:]
    assert record[-1]["action"] == "aborted"
    assert f"back on stable {stable} (revision " in record[-1]["reason"] and "Ready)" in record[-1]["reason"]
    assert routed_when_recorded.get(stable) == 100, routed_when_recorded
