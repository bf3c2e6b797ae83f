"""A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback.

What controller-runtime's envtest does, in the standard library only:

* binaries and CRDs come from :mod:`spamops_dev.artifacts` (built and cached by
  ``scripts/envtest/build.sh``; missing ones are built on first use);
* etcd and kube-apiserver start on free 127.0.0.1 ports with a generated CA,
  serving certificate, service-account signing key and an admin client
  certificate (O=system:masters), with ``--authorization-mode=RBAC``;
* the CRDs are installed with server-side apply and waited for until
  Established; a kubeconfig is written next to the certificates.

No controllers run here: objects are validated, admitted, stored and
authorized exactly as a cluster would, but nothing reconciles them. The
controllers, KWOK's fake nodes and KServe are :class:`spamops_dev.cluster.Cluster`.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from spamops_dev import ports, processes
from spamops_dev.artifacts import Artifacts, crd_names, ensure_artifacts
from spamops_dev.pki import generate_control_plane_pki


class ControlPlane:
    """etcd + kube-apiserver in a working directory; ``start()`` / ``stop()``."""

    # Components in start order; stop() goes backwards. Subclasses append theirs.
    components: tuple[str, ...] = ("etcd", "kube-apiserver")

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
        generate_control_plane_pki(self.pki)
        self._retry("etcd", self._start_etcd, timeout)
        self._retry("kube-apiserver", self._start_apiserver, timeout)
        self._write_kubeconfig()
        self.install_crds(timeout)
        self.started_seconds = time.monotonic() - t0
        return self

    def _retry(self, name: str, start: Callable[[float], None], timeout: float, attempts: int = 3) -> None:
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
                if proc is not None:
                    processes.stop(proc, timeout=0.1)
                shutil.rmtree(self.dir / name, ignore_errors=True)

    def log(self, name: str) -> Path:
        """The log file of a component (kept for a failing test's report)."""
        return self.dir / f"{name}.log"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = processes.spawn(argv, self.log(name), detached=self.detached, env=env, cwd=self.dir)
        self.procs[name] = proc
        (self.dir / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        processes.wait_ready(name, self.procs[name], ready, timeout, self.log(name))

    def _start_etcd(self, timeout: float) -> None:
        self.etcd_port, peer = ports.free_port(), ports.free_port()
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
        self.api_port = ports.free_port()
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
                # Published for kube-controller-manager/-scheduler's delegated authentication
                # (they log errors every few seconds without it); no certificate has this CN.
                f"--requestheader-client-ca-file={p / 'ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
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
                # Pods here never run a kubelet that would mount the token volume
                # this plugin adds; without it, pods are admitted as written.
                "--disable-admission-plugins=ServiceAccount",
                "--storage-backend=etcd3",
                "--watch-cache=false",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", lambda: self._https_ok("/readyz"), timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting our CA and presenting the admin certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    @staticmethod
    def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3, context=context) as r:  # noqa: S310 - our own loopback URLs
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _https_ok(self, path: str) -> bool:
        return self._http_ok(f"https://127.0.0.1:{self.api_port}{path}", self.ssl_context())

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
        files = self.artifacts.crd_files()
        file_args = [a for f in files for a in ("-f", str(f))]
        self.kubectl("apply", "--server-side", "--field-manager=envtest", *file_args)
        # Names read from the files: kubectl parsing the 1 MB KServe CRD again costs seconds.
        names = [f"crd/{name}" for f in files for name in crd_names(f.read_text())]
        self.kubectl("wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *names, timeout=timeout + 10)

    # ------------------------------------------------------------------- stop
    def stop(self) -> None:
        for name in reversed(self.components):
            proc = self.procs.pop(name, None)
            if proc is not None:
                processes.stop(proc)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_detached(d: Path, components: tuple[str, ...] = ControlPlane.components) -> list[tuple[str, int]]:
    """Stop what a detached start left in ``d`` (``<name>.pid`` files), newest component first.

    Returns the ``(component, pid)`` pairs that were running and got stopped; a pid file whose
    process is gone (or is someone else's by now) is removed without signalling anything.
    """
    stopped = []
    for name in reversed(components):
        pidfile = d / f"{name}.pid"
        if not pidfile.is_file():
            continue
        pid = int(pidfile.read_text())
        # Only signal the process we started: its command line names our binary.
        binary = {"kserve-manager": "manager"}.get(name, name)
        if processes.stop_pid(pid, is_ours=lambda argv, b=binary: bool(argv) and argv[0].endswith(f"/{b}")):
            stopped.append((name, pid))
        pidfile.unlink(missing_ok=True)
    return stopped
