"""The test cluster: the control plane plus the parts that reconcile, all local processes on loopback.

On top of :class:`~spamops_dev.controlplane.ControlPlane` (etcd + kube-apiserver):

* **kube-controller-manager** (Deployments -> ReplicaSets -> Pods, EndpointSlices,
  Jobs from CronJobs, garbage collection, namespaces, service-account tokens) and
  **kube-scheduler**, built from the same k8s.io/kubernetes module, leader election off;
* **KWOK** with fake nodes: a real kubelet would need containerd, CNI, pod images
  and cgroup changes on the host, so KWOK's Stages mark the scheduled pods
  Running/Ready - which is what the Deployment controller and KServe observe;
* the **KServe manager** (:mod:`spamops_dev.kserve`) with its webhooks registered.

Nothing is imitated: each object's status is written by the real controller
that owns it. The one part that cannot run here, Knative Serving's data plane,
is not started; the tests that need its status say so.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import yaml

from spamops_dev import kserve, ports, processes
from spamops_dev.controlplane import ControlPlane

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
POD_CIDR = "10.0.0.0/24"


class Cluster(ControlPlane):
    """``Cluster(nodes=2).start()``: API server, controllers, scheduler, KWOK nodes, KServe manager."""

    components = (*ControlPlane.components, "kube-controller-manager", "kube-scheduler", "kwok", "kserve-manager")

    def __init__(self, *args, nodes: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self.kserve_webhook_port = 0
        self.component_seconds: dict[str, float] = {}

    def start(self, timeout: float = 180.0) -> Cluster:
        t0 = time.monotonic()
        super().start(timeout)
        for name, start in (
            ("kube-controller-manager", self._start_controller_manager),
            ("kube-scheduler", self._start_scheduler),
            ("kwok", self._start_kwok),
            ("kserve-manager", self._start_kserve),
        ):
            t = time.monotonic()
            self._retry(name, start, timeout)
            self.component_seconds[name] = time.monotonic() - t
        self.started_seconds = time.monotonic() - t0
        return self

    # ---------------------------------------------------- kube controllers
    def _kube_common(self, port: int) -> list[str]:
        k = str(self.kubeconfig)
        return [
            f"--kubeconfig={k}",
            f"--authentication-kubeconfig={k}",
            f"--authorization-kubeconfig={k}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.dir / 'certs'}",
            "--leader-elect=false",
        ]

    def _healthz(self, port: int) -> bool:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert; only /healthz is read
        return self._http_ok(f"https://127.0.0.1:{port}/healthz", insecure)

    def _start_controller_manager(self, timeout: float) -> None:
        port, p = ports.free_port(), self.pki
        self._spawn(
            "kube-controller-manager",
            [
                str(self.artifacts.kube_controller_manager),
                *self._kube_common(port),
                "--controllers=*",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                "--v=1",
            ],
        )
        self._wait("kube-controller-manager", lambda: self._healthz(port), timeout)

    def _start_scheduler(self, timeout: float) -> None:
        port = ports.free_port()
        self._spawn("kube-scheduler", [str(self.artifacts.kube_scheduler), *self._kube_common(port), "--v=1"])
        self._wait("kube-scheduler", lambda: self._healthz(port), timeout)

    # ----------------------------------------------------------------- KWOK
    def _start_kwok(self, timeout: float) -> None:
        port = ports.free_port()
        self._spawn(
            "kwok",
            [
                str(self.artifacts.kwok),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self.artifacts.kwok_stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--node-ip=10.0.0.1",
                f"--cidr={POD_CIDR}",
                f"--server-address=127.0.0.1:{port}",
            ],
        )
        self._wait("kwok", lambda: ports.listening(port), timeout)
        self.kubectl("apply", "--server-side", "--field-manager=envtest", "-f", "-", input=json.dumps(self._nodes()))
        self._wait("kwok", self._nodes_ready, timeout)

    def _nodes(self) -> dict:
        def node(name: str) -> dict:
            return {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                },
            }

        return {"apiVersion": "v1", "kind": "List", "items": [node(n) for n in self.node_names]}

    def _nodes_ready(self) -> bool:
        res = self.kubectl("get", "nodes", "-o", "json", check=False)
        if res.returncode != 0:
            return False
        ready = {
            n["metadata"]["name"]
            for n in json.loads(res.stdout)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        }
        return set(self.node_names) <= ready

    # --------------------------------------------------------------- KServe
    def _start_kserve(self, timeout: float) -> None:
        arts = self.artifacts
        self.kserve_webhook_port = ports.free_port()
        metrics, probe = ports.free_port(), ports.free_port()
        tmp = self.dir / "kserve-tmp"
        kserve.serving_cert(self, tmp)
        self.kubectl("create", "namespace", kserve.NAMESPACE, check=False)
        # Knative's own autoscaler defaults, which KServe's Serverless reconciler reads (no Knative runs).
        self.kubectl("create", "namespace", "knative-serving", check=False)
        self.kubectl("apply", "--server-side", "--field-manager=envtest", "-f", str(arts.knative_autoscaler_config))
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=envtest",
            "-f",
            "-",
            input=json.dumps(kserve.configmap(arts.kserve_config)),
        )
        env = {
            "POD_NAMESPACE": kserve.NAMESPACE,
            "KUBECONFIG": str(self.kubeconfig),  # its webhooks read the ConfigMap with a client of their own
            "TMPDIR": str(tmp),
            "HOME": str(tmp),
            "PATH": "/usr/bin:/bin",
        }
        self._spawn(
            "kserve-manager",
            [
                str(arts.kserve_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--metrics-addr=127.0.0.1:{metrics}",
                f"--health-probe-addr=127.0.0.1:{probe}",
                f"--webhook-port={self.kserve_webhook_port}",
                "--leader-elect=false",
            ],
            env=env,
        )
        self._wait("kserve-manager", lambda: self._http_ok(f"http://127.0.0.1:{probe}/readyz"), timeout)
        hooks = kserve.webhook_configurations(
            arts.kserve_webhooks, self.kserve_webhook_port, (self.pki / "ca.crt").read_bytes()
        )
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=envtest", "-f", "-",
            input=yaml.safe_dump_all(hooks),
        )  # fmt: skip

    def logs(self) -> dict[str, Path]:
        """Each component's log file (what a failing test's report shows)."""
        return {name: self.log(name) for name in self.components if self.log(name).exists()}


def log_tails(cluster: ControlPlane, lines: int = 30) -> str:
    """The last lines of every component's log, for a failed test's report."""
    return "\n\n".join(
        f"--- {name} ({cluster.log(name)})\n"
        + "\n".join(line[:400] for line in processes.log_tail(cluster.log(name), lines).splitlines())
        for name in cluster.components
        if cluster.log(name).exists()
    )
