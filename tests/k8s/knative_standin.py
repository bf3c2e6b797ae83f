"""STAND-IN for Knative Serving's controllers: the one part of the test cluster that does not run.

Knative's data plane needs Envoy (Kourier or Istio), which no registry here
serves, so no Knative controller runs in the test cluster. KServe's real
Serverless reconciler creates and updates the Knative Service; this helper then
writes that Service's ``status`` the way Knative's service/route controllers do:
one Revision name per template change (``<ksvc>-00001``, ``-00002``...; a
change back to an earlier template is a new Revision, as in Knative),
``traffic[]`` resolved from the ``spec.traffic`` KServe wrote (``latestRevision``
entries bound to the newest revision, tags and tagged URLs kept), and the Ready,
ConfigurationsReady and RoutesReady conditions. KServe's own reconciler then
turns it into the InferenceService's status. It never writes the
InferenceService. Documented as the stand-in in docs/kubernetes.md.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from k8shelpers import Kube

KSVC = "services.serving.knative.dev"
DOMAIN = "example.com"  # KServe's default ingressDomain


def ksvc(kube: Kube, name: str, namespace: str) -> dict | None:
    res = kube.kubectl("get", KSVC, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


class KnativeStandIn:
    """Remembers each Knative Service's templates (Knative's Configuration does) to number its revisions."""

    def __init__(self, kube: Kube):
        self.kube = kube
        self.templates: dict[tuple[str, str], list[str]] = {}

    def reconcile(self, name: str, namespace: str) -> dict:
        """Write ``status`` on Knative Service ``name`` as Knative would once its newest revision is Ready."""
        service = ksvc(self.kube, name, namespace)
        assert service is not None, f"no Knative Service {namespace}/{name}: KServe has not created it"
        seen = self.templates.setdefault((namespace, name), [])
        template = json.dumps(service["spec"].get("template", {}), sort_keys=True)
        if not seen or seen[-1] != template:  # a new Revision per template change, even back to an old one
            seen.append(template)
        latest = f"{name}-{len(seen):05d}"
        host = f"{name}.{namespace}.{DOMAIN}"
        traffic = []
        for target in service["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]:
            entry = {
                "revisionName": latest if target.get("latestRevision") else target["revisionName"],
                "latestRevision": bool(target.get("latestRevision")),
                "percent": target.get("percent", 0),
            }
            if target.get("tag"):
                entry["tag"] = target["tag"]
                entry["url"] = f"http://{target['tag']}-{host}"
            traffic.append(entry)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("ConfigurationsReady", "Ready", "RoutesReady")
        ]
        status = {
            "observedGeneration": service["metadata"]["generation"],
            "latestCreatedRevisionName": latest,
            "latestReadyRevisionName": latest,
            "url": f"http://{host}",
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
            "traffic": traffic,
            "conditions": conditions,
        }
        if _unchanged(service.get("status") or {}, status):
            return service["status"]  # as Knative does: no write (and no KServe reconcile) when nothing changed
        self.kube.kubectl(
            "patch", KSVC, name, "-n", namespace, "--subresource=status", "--type=merge",
            "--field-manager=knative-standin", "-p", json.dumps({"status": status}),
        )  # fmt: skip
        return status

    def template(self, name: str, namespace: str, revision: str) -> dict | None:
        """The pod template a revision was cut from (Knative's Revision spec), as seen by :meth:`reconcile`."""
        seen = self.templates.get((namespace, name), [])
        index = int(revision.rsplit("-", 1)[-1]) - 1 if revision.startswith(f"{name}-") else -1
        return json.loads(seen[index]) if 0 <= index < len(seen) else None

    def run(self, name: str, namespace: str, period: float = 1.0) -> threading.Event:
        """Reconcile every ``period`` seconds in a thread (Knative's controllers watching); set the event to stop."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(period):
                if ksvc(self.kube, name, namespace) is not None:
                    try:
                        self.reconcile(name, namespace)
                    except AssertionError:  # a conflict with KServe's own write: next round
                        pass

        threading.Thread(target=loop, daemon=True, name=f"knative-standin-{name}").start()
        return stop


def _unchanged(live: dict, status: dict) -> bool:
    def strip(s: dict) -> dict:
        return {**s, "conditions": sorted((c["type"], c["status"]) for c in s.get("conditions", []))}

    return bool(live) and strip({k: live.get(k) for k in status}) == strip(status)
