#!/usr/bin/env python3
"""A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback.

What controller-runtime's envtest does, in the standard library only:

* binaries (kube-apiserver, kubectl, etcd, helm, helm-docs) and CRDs (KServe, Argo CD) are
  built/read by ``build.sh`` and cached outside the repo, keyed by the versions
  pinned in ``versions.env``; missing ones are built on first use;
* etcd and kube-apiserver start on free 127.0.0.1 ports with a generated CA,
  serving certificate, service-account signing key and an admin client
  certificate (O=system:masters), with ``--authorization-mode=RBAC``;
* the CRDs are installed with server-side apply and waited for until
  Established; a kubeconfig is written next to the certificates.

No controllers run (no kube-controller-manager, scheduler, kubelet): objects
are validated, admitted, stored and authorized exactly as a cluster would, but
nothing reconciles them.

CLI (``make envtest`` uses it)::

    controlplane.py start [--dir DIR]   # detached; prints the kubeconfig path
    controlplane.py stop  [--dir DIR]
    controlplane.py run   [--dir DIR]   # foreground until Ctrl-C
    controlplane.py paths               # artifact paths, building them if needed
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"
BUILD_SCRIPT = HERE / "build.sh"


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
    kube_apiserver: Path
    kubectl: Path
    etcd: Path
    helm: Path
    helm_docs: Path
    kserve_crds: Path
    argocd_crds: Path
    versions: dict

    @classmethod
    def from_versions(cls, versions: dict[str, str] | None = None) -> Artifacts:
        v = versions or read_versions()
        root = cache_root()
        return cls(
            kube_apiserver=root / f"kube-apiserver-{v['KUBERNETES_VERSION']}" / "kube-apiserver",
            kubectl=root / f"kubectl-{v['KUBERNETES_VERSION']}" / "kubectl",
            etcd=root / f"etcd-{v['ETCD_VERSION']}" / "etcd",
            helm=root / f"helm-{v['HELM_VERSION']}" / "helm",
            helm_docs=root / f"helm-docs-{v['HELM_DOCS_VERSION']}" / "helm-docs",
            kserve_crds=root / f"kserve-crds-{v['KSERVE_VERSION']}",
            argocd_crds=root / f"argocd-crds-{v['ARGOCD_VERSION']}",
            versions=v,
        )

    def complete(self) -> bool:
        dirs = [p.parent for p in (self.kube_apiserver, self.kubectl, self.etcd, self.helm, self.helm_docs)]
        dirs += [self.kserve_crds, self.argocd_crds]
        want = f"revision={self.versions.get('BUILD_REVISION', '')}"
        return all(_stamp_lines(d / ".complete").count(want) == 1 for d in dirs)

    def crd_files(self) -> list[Path]:
        return sorted(self.kserve_crds.glob("*.yaml")) + sorted(self.argocd_crds.glob("*.yaml"))


_CRD_NAME = re.compile(r"^metadata:\n(?:[ ]{2,}.*\n)*?[ ]{2}name: ['\"]?([a-z0-9.-]+)", re.M)


def crd_names(text: str) -> list[str]:
    """metadata.name of each CustomResourceDefinition in a YAML stream."""
    return [m.group(1) for m in _CRD_NAME.finditer(text)]


def _stamp_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def ensure_artifacts() -> Artifacts:
    """Return the cached artifacts, running build.sh first if any is missing."""
    arts = Artifacts.from_versions()
    if not arts.complete():
        print("envtest: building control-plane binaries (first time only)...", file=sys.stderr, flush=True)
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
        arts = Artifacts.from_versions()
        if not arts.complete():
            raise RuntimeError(f"build.sh finished but artifacts are missing under {cache_root()}")
    return arts


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is required to generate the control plane's certificates")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def generate_pki(d: Path) -> None:
    """CA, apiserver serving cert (127.0.0.1/localhost), admin client cert, SA key pair."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=spamops-envtest-ca",
        cwd=d,
    )

    def leaf(name: str, subj: str, ext: str) -> None:
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
        (d / f"{name}.ext").write_text(ext)
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )

    leaf(
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
    )
    leaf(
        "admin",
        "/CN=envtest-admin/O=system:masters",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key", cwd=d)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


class ControlPlane:
    """etcd + kube-apiserver in a working directory; ``start()`` / ``stop()``."""

    def __init__(self, workdir: Path | None = None, artifacts: Artifacts | None = None, detached: bool = False):
        """``detached``: the processes get their own session and outlive this
        Python process (the CLI); otherwise they share its process group, so a
        Ctrl-C of the test run reaches them too."""
        self.artifacts = artifacts or ensure_artifacts()
        self.detached = detached
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="spamops-envtest-"))
        self.pki = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"
        self.procs: dict[str, subprocess.Popen] = {}
        self.api_port = 0
        self.etcd_port = 0
        self.started_seconds = 0.0
        self.restarts: dict[str, int] = {}

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 120.0) -> ControlPlane:
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        generate_pki(self.pki)
        self._retry("etcd", self._start_etcd, timeout)
        self._retry("kube-apiserver", self._start_apiserver, timeout)
        self._write_kubeconfig()
        self.install_crds(timeout)
        self.started_seconds = time.monotonic() - t0
        return self

    def _retry(self, name: str, start, timeout: float, attempts: int = 3) -> None:
        """Start a component; if it exits at once (typically: a free port was
        taken by someone else in the meantime), try again on new ports."""
        for attempt in range(1, attempts + 1):
            try:
                start(timeout)
                return
            except RuntimeError:
                if attempt == attempts:
                    raise
                self.restarts[name] = self.restarts.get(name, 0) + 1
                proc = self.procs.pop(name, None)
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
                shutil.rmtree(self.dir / name, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=self.detached
        )
        log.close()
        self.procs[name] = proc
        (self.dir / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def _log_tail(self, name: str, n: int = 40) -> str:
        try:
            return "\n".join((self.dir / f"{name}.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _start_etcd(self, timeout: float) -> None:
        self.etcd_port, peer = free_port(), free_port()
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(self.artifacts.etcd),
                "--name=envtest",
                f"--data-dir={self.dir / 'etcd' / 'data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=envtest={peer_url}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", lambda: self._http_ok(f"{client}/health"), timeout)

    def _start_apiserver(self, timeout: float) -> None:
        self.api_port = free_port()
        p = self.pki
        self._spawn(
            "kube-apiserver",
            [
                str(self.artifacts.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.dir / 'certs'}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                # No kube-controller-manager runs: nothing would create the token
                # Secrets/pods this plugin checks for.
                "--disable-admission-plugins=ServiceAccount",
                "--storage-backend=etcd3",
                "--watch-cache=false",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", lambda: self._https_ok("/readyz"), timeout)

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _https_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.api_port}{path}", timeout=3, context=self._ssl_context()
            ) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _wait(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self._log_tail(name)}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {timeout:.0f}s:\n{self._log_tail(name)}")

    def _write_kubeconfig(self) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "envtest",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.api_port}",
                        "certificate-authority-data": b64("ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "envtest-admin",
                    "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
                }
            ],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "envtest-admin"}}],
        }
        # JSON is YAML: kubectl and helm read it as is.
        self.kubeconfig.write_text(json.dumps(cfg, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)

    # ------------------------------------------------------------------- CRDs
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.artifacts.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            text=True,
            capture_output=True,
            check=check,
            timeout=timeout,
        )

    def install_crds(self, timeout: float = 120.0) -> None:
        file_args = [a for f in self.artifacts.crd_files() for a in ("-f", str(f))]
        self.kubectl("apply", "--server-side", "--field-manager=envtest", *file_args)
        # Names read from the files: kubectl parsing the 1 MB KServe CRD again costs seconds.
        names = [f"crd/{name}" for f in self.artifacts.crd_files() for name in crd_names(f.read_text())]
        self.kubectl("wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *names, timeout=timeout + 10)

    # ------------------------------------------------------------------- stop
    def stop(self) -> None:
        for name in ("kube-apiserver", "etcd"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------- CLI
def _default_dir() -> Path:
    return cache_root() / "run"


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _stop_detached(d: Path) -> None:
    for name in ("kube-apiserver", "etcd"):
        pidfile = d / f"{name}.pid"
        if not pidfile.is_file():
            continue
        pid = int(pidfile.read_text())
        # Only signal the process we started: its command line names our binary.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            cmdline = ""
        if alive(pid) and cmdline.endswith(f"/{name}"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=["start", "stop", "run", "paths"])
    ap.add_argument("--dir", type=Path, default=None, help="state directory (default: cache/run)")
    args = ap.parse_args(argv)
    if args.command == "paths":
        arts = ensure_artifacts()
        for k, v in arts.__dict__.items():
            if k != "versions":
                print(f"{k.upper()}={v}")
        return 0
    d = (args.dir or _default_dir()).resolve()
    if args.command == "stop":
        _stop_detached(d)
        print(f"stopped control plane in {d}")
        return 0
    _stop_detached(d)  # a previous detached one in the same directory
    shutil.rmtree(d, ignore_errors=True)
    cp = ControlPlane(workdir=d, detached=args.command == "start")
    try:
        cp.start()
    except BaseException:
        cp.stop()
        raise
    v = cp.artifacts.versions
    print(
        f"control plane up in {cp.started_seconds:.1f}s: kube-apiserver {v['KUBERNETES_VERSION']}"
        f" at https://127.0.0.1:{cp.api_port}, etcd {v['ETCD_VERSION']}",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={cp.kubeconfig}", file=sys.stderr)
    print(f"kubectl: {cp.artifacts.kubectl}\nhelm:    {cp.artifacts.helm}", file=sys.stderr)
    if args.command == "start":
        print(f"stop with: {sys.executable} {Path(__file__)} stop --dir {d}", file=sys.stderr)
        print(cp.kubeconfig)
        return 0
    print(cp.kubeconfig, flush=True)
    print("Ctrl-C stops it.", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
