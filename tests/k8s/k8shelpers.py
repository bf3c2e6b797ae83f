"""Helpers for the Kubernetes packaging tests (kubectl/helm bound to envtest)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from spamops_dev import controlplane
from spamops_dev.artifacts import REPO
from spamops_dev.cluster import Cluster
from spamops_dev.processes import wait_until

__all__ = ["REPO", "wait_until"]

CHART = REPO / "helm" / "spamops"
MANIFESTS = REPO / "manifests"
NAMESPACE = "spamops"
HOOK = "argocd.argoproj.io/hook"


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def dump_docs(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def obj_key(o: dict) -> tuple[str, str, str, str]:
    md = o.get("metadata", {})
    return (o["apiVersion"], o["kind"], md.get("namespace", ""), md["name"])


def sync_wave(o: dict) -> int:
    return int((o.get("metadata", {}).get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))


@dataclass
class Kube:
    """kubectl/helm bound to the test control plane."""

    cp: controlplane.ControlPlane

    @property
    def kubeconfig(self) -> Path:
        return self.cp.kubeconfig

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        res = self.cp.kubectl(*args, input=input, check=False, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stderr}\n{res.stdout}")
        return res

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(
            [str(self.cp.artifacts.helm), *args],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "KUBECONFIG": str(self.kubeconfig),
                "HELM_CACHE_HOME": str(self.cp.dir / "helm-cache"),
                "HELM_CONFIG_HOME": str(self.cp.dir / "helm-config"),
                "HELM_DATA_HOME": str(self.cp.dir / "helm-data"),
            },
            timeout=120,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{res.stderr}")
        return res

    def helm_template(self, *values_files: Path, extra: tuple[str, ...] = ()) -> list[dict]:
        args = ["template", "spamops", str(CHART), "--namespace", NAMESPACE]
        for f in values_files:
            args += ["-f", str(f)]
        return load_docs(self.helm(*args, *extra).stdout)

    def kustomize(self, path: Path) -> list[dict]:
        return load_docs(self.kubectl("kustomize", str(path)).stdout)

    def server_version(self) -> str:
        return json.loads(self.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]

    def apply(
        self,
        docs: list[dict],
        *,
        dry_run: bool = False,
        manager: str = "spamops-tests",
        check: bool = True,
        force: bool = False,
    ) -> subprocess.CompletedProcess:
        args = ["apply", "--server-side", f"--field-manager={manager}", "-f", "-"]
        if dry_run:
            args.append("--dry-run=server")
        if force:
            args.append("--force-conflicts")
        return self.kubectl(*args, input=dump_docs(docs), check=check)

    def get(self, o: dict) -> dict:
        md = o["metadata"]
        args = [
            "get",
            f"{o['kind'].lower()}.{o['apiVersion'].split('/')[0]}" if "/" in o["apiVersion"] else o["kind"].lower(),
            md["name"],
            "-o",
            "json",
            "--show-managed-fields",
        ]
        if md.get("namespace"):
            args += ["-n", md["namespace"]]
        return json.loads(self.kubectl(*args).stdout)

    def ensure_namespace(self, name: str) -> None:
        self.kubectl("create", "namespace", name, check=False)

    def reset(self) -> None:
        """Delete everything the packaging creates (namespaces stay: without
        kube-controller-manager a deleted namespace would never finish). On the
        cluster, wait until the objects are gone: KServe's finalizer and the
        garbage collector take a moment, and an apply meanwhile would be refused."""
        wait = "--wait=true" if isinstance(self.cp, Cluster) else "--wait=false"
        kinds = (
            "inferenceservices.serving.kserve.io,jobs.batch,cronjobs.batch,configmaps,secrets,"
            "serviceaccounts,roles.rbac.authorization.k8s.io,"
            "rolebindings.rbac.authorization.k8s.io,networkpolicies.networking.k8s.io,"
            "deployments.apps,services"
        )
        self.kubectl(
            "delete", "-n", NAMESPACE, kinds, "--all", wait, "--ignore-not-found", "--timeout=120s", timeout=150
        )
        self.kubectl(
            "delete",
            "validatingadmissionpolicies,validatingadmissionpolicybindings",
            "-l",
            "app.kubernetes.io/part-of=spamops",
            "--ignore-not-found",
        )
        self.kubectl(
            "delete",
            "-n",
            "argocd",
            "applications.argoproj.io,appprojects.argoproj.io",
            "--all",
            "--ignore-not-found",
            "--wait=false",
        )
        # Finalizers (the Application's) are only removed by Argo CD: drop them.
        for name in self.kubectl("get", "-n", "argocd", "applications.argoproj.io", "-o", "name").stdout.split():
            self.kubectl("patch", "-n", "argocd", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def psa_warning(kube: Kube) -> str:
    """Pod Security warnings for a pod that breaks "restricted" (a probe that
    the namespace's warn label is in force); empty when there are none."""
    probe = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "psa-probe", "namespace": NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": False}}],
                }
            }
        },
    }
    res = kube.apply([probe], dry_run=True)
    return "\n".join(line for line in res.stderr.splitlines() if "PodSecurity" in line)


def token_kubeconfig(kube: Kube, account: str, path: Path) -> Path:
    token = kube.kubectl("create", "token", account, "-n", NAMESPACE, "--duration=10m").stdout.strip()
    ca = base64.b64encode((kube.cp.pki / "ca.crt").read_bytes()).decode()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": account,
                "clusters": [
                    {
                        "name": "envtest",
                        "cluster": {
                            "server": f"https://127.0.0.1:{kube.cp.api_port}",
                            "certificate-authority-data": ca,
                        },
                    }
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": "envtest", "user": account}}],
            }
        )
    )
    return path


def train_versions(directory: Path, seeds: tuple[int, ...], *extra: str) -> tuple[Path, list[str]]:
    """One version per seed, trained in order into ``directory/store`` by the real CLI: (store, versions)."""
    from spamops.cli import main

    store = directory / "store"
    versions = []
    for seed in seeds:
        config = directory / f"seed-{seed}.yaml"
        config.write_text(yaml.safe_dump({"store": str(store), "train": {"seed": seed}}))
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["train", "--config", str(config), "--quiet", "--json", *extra]) == 0
        versions.append(json.loads(buffer.getvalue())["version"])
    return store, versions
