"""The pinned, cached binaries and manifests of the test cluster, built by ``scripts/envtest/build.sh``.

Versions live in one file, ``scripts/envtest/versions.env``, read by the bash
build and by this module alike; artifacts are cached outside the repo under
``${SPAMOPS_CACHE:-~/.cache/spamops}/envtest/<component>-<version>/`` and count
only when stamped with the current ``BUILD_REVISION``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # a source checkout: this package is installed editable
ENVTEST_SCRIPTS = REPO / "scripts" / "envtest"
VERSIONS_FILE = ENVTEST_SCRIPTS / "versions.env"
BUILD_SCRIPT = ENVTEST_SCRIPTS / "build.sh"


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """KEY=VALUE lines of versions.env (comments and blanks ignored)."""
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip('"')
    return out


def cache_root() -> Path:
    base = os.environ.get("SPAMOPS_CACHE") or str(Path.home() / ".cache" / "spamops")
    return Path(base) / "envtest"


@dataclass(frozen=True)
class Artifacts:
    """Paths of everything build.sh makes; field names match its ``--print-env`` keys (upper-cased)."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    helm: Path
    helm_docs: Path
    kwok: Path
    kwok_stages: Path
    kserve_manager: Path
    traefik: Path
    kserve_crds: Path
    kserve_config: Path
    kserve_webhooks: Path
    knative_crds: Path
    knative_autoscaler_config: Path
    gateway_api_crds: Path
    argocd_crds: Path
    prometheus_operator_crds: Path
    versions: dict

    @classmethod
    def from_versions(cls, versions: dict[str, str] | None = None) -> Artifacts:
        v = versions or read_versions()
        root = cache_root()
        k8s, knative = v["KUBERNETES_VERSION"], v["KNATIVE_SERVING_VERSION"]
        return cls(
            kube_apiserver=root / f"kube-apiserver-{k8s}" / "kube-apiserver",
            kube_controller_manager=root / f"kube-controller-manager-{k8s}" / "kube-controller-manager",
            kube_scheduler=root / f"kube-scheduler-{k8s}" / "kube-scheduler",
            kubectl=root / f"kubectl-{k8s}" / "kubectl",
            etcd=root / f"etcd-{v['ETCD_VERSION']}" / "etcd",
            helm=root / f"helm-{v['HELM_VERSION']}" / "helm",
            helm_docs=root / f"helm-docs-{v['HELM_DOCS_VERSION']}" / "helm-docs",
            kwok=root / f"kwok-{v['KWOK_VERSION']}" / "kwok",
            kwok_stages=root / f"kwok-{v['KWOK_VERSION']}" / "stages.yaml",
            kserve_manager=root / f"kserve-manager-{v['KSERVE_VERSION']}" / "manager",
            traefik=root / f"traefik-{v['TRAEFIK_VERSION']}" / "traefik",
            kserve_crds=root / f"kserve-crds-{v['KSERVE_VERSION']}",
            kserve_config=root / f"kserve-config-{v['KSERVE_VERSION']}" / "inferenceservice.yaml",
            kserve_webhooks=root / f"kserve-config-{v['KSERVE_VERSION']}" / "webhooks.yaml",
            knative_crds=root / f"knative-serving-crds-{knative}",
            knative_autoscaler_config=root / f"knative-serving-config-{knative}" / "autoscaler.yaml",
            gateway_api_crds=root / f"gateway-api-crds-{v['GATEWAY_API_VERSION']}",
            argocd_crds=root / f"argocd-crds-{v['ARGOCD_VERSION']}",
            prometheus_operator_crds=root / f"prometheus-operator-crds-{v['PROMETHEUS_OPERATOR_VERSION']}",
            versions=v,
        )

    def paths(self) -> dict[str, Path]:
        """``KEY: path`` for each artifact, as ``build.sh --print-env`` prints them."""
        return {f.name.upper(): getattr(self, f.name) for f in fields(self) if f.name != "versions"}

    def stamped_dirs(self) -> list[Path]:
        """The cache directories build.sh stamps: a ``*_CRDS`` path is one, any other path's parent is."""
        out: list[Path] = []
        for key, p in self.paths().items():
            d = p if key.endswith("_CRDS") else p.parent
            if d not in out:
                out.append(d)
        return out

    def complete(self) -> bool:
        want = f"revision={self.versions.get('BUILD_REVISION', '')}"
        return all(_stamp_lines(d / ".complete").count(want) == 1 for d in self.stamped_dirs())

    def crd_files(self) -> list[Path]:
        """Every CRD file the test cluster installs, in a stable order."""
        dirs = (
            self.kserve_crds,
            self.knative_crds,
            self.gateway_api_crds,
            self.argocd_crds,
            self.prometheus_operator_crds,
        )
        return [f for d in dirs for f in sorted(d.glob("*.yaml"))]


_CRD_NAME = re.compile(r"^metadata:\n(?:[ ]{2,}.*\n)*?[ ]{2}name: ['\"]?([a-z0-9.-]+)", re.M)


def crd_names(text: str) -> list[str]:
    """metadata.name of each CustomResourceDefinition in a YAML stream (other kinds are skipped)."""
    out: list[str] = []
    for doc in re.split(r"^---[ \t]*$", text, flags=re.M):
        if re.search(r"^kind: CustomResourceDefinition\s*$", doc, re.M):
            out += [m.group(1) for m in _CRD_NAME.finditer(doc)][:1]
    return out


def _stamp_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def ensure_helm() -> Path:
    """The pinned helm alone (``build.sh helm`` the first time): what rendering the chart needs, no cluster."""
    arts = Artifacts.from_versions()
    want = f"revision={arts.versions.get('BUILD_REVISION', '')}"
    if not (arts.helm.is_file() and want in _stamp_lines(arts.helm.parent / ".complete")):
        print("envtest: building helm (first time only)...", file=sys.stderr, flush=True)
        subprocess.run(["bash", str(BUILD_SCRIPT), "helm"], check=True, stdout=2)  # progress to stderr
        if not arts.helm.is_file():
            raise RuntimeError(f"build.sh helm finished but {arts.helm} is missing")
    return arts.helm


def ensure_artifacts() -> Artifacts:
    """Return the cached artifacts, running build.sh first if any is missing."""
    arts = Artifacts.from_versions()
    if not arts.complete():
        print("envtest: building the test cluster's binaries (first time only)...", file=sys.stderr, flush=True)
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
        arts = Artifacts.from_versions()
        if not arts.complete():
            missing = [str(d) for d in arts.stamped_dirs() if not (d / ".complete").is_file()]
            raise RuntimeError(f"build.sh finished but artifacts are missing: {', '.join(missing)}")
    return arts
