#!/usr/bin/env python3
"""A Docker daemon and an OCI registry on this machine only, for building and testing the images.

    python -m spamops_dev.docker up   [--dir .spamops/docker]   # prints DOCKER_HOST=... REGISTRY=...
    python -m spamops_dev.docker env  [--dir ...]
    python -m spamops_dev.docker down [--dir ...]

There is no systemd here and nothing may change the host's network, so ``dockerd``
is started by hand with its own socket, exec root and data root, no iptables, no IP
forwarding and no bridge (builds and containers use ``--network=host``).  Its data
root defaults to ``~/.cache/spamops/images/docker`` and survives, so built images and
the build cache are reused by the next run; a lock file keeps two daemons off it.
The registry is Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1, which
docker treats as an insecure (plain HTTP) registry without configuration.
The pytest fixtures in ``tests/images/conftest.py`` use these classes directly.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from spamops_dev import processes
from spamops_dev.ports import free_port

CACHE = Path(os.environ.get("SPAMOPS_CACHE") or Path.home() / ".cache" / "spamops")
DEFAULT_DATA_ROOT = CACHE / "images" / "docker"


def docker_cli() -> str:
    """The docker client: ``$DOCKER``, else Debian's (it matches the daemon's API), else PATH's."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if not found:
        raise SystemExit("docker not found: apt-get install -y docker.io (or run make install as root)")
    return found


def _need(binary: str, package: str) -> str:
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if not found:
        raise SystemExit(f"{binary} not found: apt-get install -y {package} (make install does it as root)")
    return found


def _stop_pid(proc: subprocess.Popen | None, pid: int | None, timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL: by PID, never by name."""
    if proc is not None:
        processes.stop(proc, timeout)
    elif pid is not None:
        processes.stop_pid(pid, timeout)


@dataclass
class Dockerd:
    """One ``dockerd`` on a unix socket under ``run_dir``; images kept in ``data_root``."""

    run_dir: Path
    data_root: Path = DEFAULT_DATA_ROOT
    proc: subprocess.Popen | None = None
    pid: int | None = None
    _lock: TextIO | None = field(default=None, repr=False)  # the held lock file

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host, "DOCKER": docker_cli(), "DOCKER_BUILDKIT": "1"}

    def docker(self, *args: str, check: bool = True, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env(), **kw.pop("env", {})}
        proc = subprocess.run(
            [docker_cli(), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    @property
    def _owner_file(self) -> Path:
        return self.data_root.parent / f".{self.data_root.name}.owner"

    def _owned_elsewhere(self) -> bool:
        """A daemon started by `daemons.py up` (whose starter has exited) still uses the data root."""
        try:
            pid = int(self._owner_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return pid != self.pid

    def _take_lock(self, wait: float) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_root.parent / f".{self.data_root.name}.lock", "w")  # noqa: SIM115 - held while running
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if self._owned_elsewhere():
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    raise BlockingIOError
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise RuntimeError(
                        f"another dockerd uses {self.data_root} (lock held); stop it or pass another --data-root"
                    ) from None
                time.sleep(1)
        self._lock = handle

    def start(self, timeout: float = 60, lock_wait: float = 900) -> Dockerd:
        dockerd = _need("dockerd", "docker.io")
        self._take_lock(lock_wait)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "daemon.json"
        # Nothing on the host network changes: no bridge, no NAT rules, no forwarding.
        config.write_text(
            json.dumps({"iptables": False, "ip-forward": False, "ip-masq": False, "bridge": "none"}) + "\n"
        )
        log = open(self.run_dir / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's stdout/stderr
        self.proc = subprocess.Popen(
            [
                dockerd,
                "--config-file",
                str(config),
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.run_dir / "exec"),
                "--pidfile",
                str(self.run_dir / "dockerd.pid"),
                "-H",
                self.host,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._owner_file.write_text(f"{self.pid}\n")
        try:
            processes.wait_ready("dockerd", self.proc, self._answers, timeout, self.run_dir / "dockerd.log")
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        return self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0

    def log(self) -> str:
        path = self.run_dir / "dockerd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        _stop_pid(self.proc, self.pid, timeout)
        self.proc = None
        if not self._owned_elsewhere():
            self._owner_file.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


@dataclass
class DockerRegistry:
    """Debian's ``docker-registry`` serving plain HTTP on 127.0.0.1:``port``."""

    data_dir: Path
    # Blobs and manifests; kept in the cache by default, so a second run's push finds
    # every layer already there (repository names do not include host:port).
    storage: Path = CACHE / "images" / "registry"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> DockerRegistry:
        binary = _need("docker-registry", "docker-registry")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.address}'}}\n"
        )
        log = open(self.data_dir / "registry.log", "ab")  # noqa: SIM115 - the server's output
        self.proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.proc.pid
        try:
            processes.wait_ready(
                "docker-registry",
                self.proc,
                lambda: processes.http_ok(f"http://{self.address}/v2/"),
                timeout,
                self.data_dir / "registry.log",
            )
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self

    def log(self) -> str:
        path = self.data_dir / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10) -> None:
        _stop_pid(self.proc, self.pid, timeout)
        self.proc = None


# ---------------------------------------------------------------- command line
def _state_file(directory: Path) -> Path:
    return directory / "daemons.json"


def _up(directory: Path, data_root: Path) -> int:
    state = _state_file(directory)
    if state.exists():
        print(f"already running (state in {state}); `down` first", file=sys.stderr)
        return _env(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # A short run dir: unix socket paths are limited to 108 bytes.
    run_dir = Path(tempfile.mkdtemp(prefix="spamops-docker-"))
    daemon = Dockerd(run_dir, data_root).start(lock_wait=0)
    daemon._lock = None  # the lock file handle dies with this process; the pid file guards from here on
    registry = DockerRegistry(directory / "registry").start()
    state.write_text(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "data_root": str(data_root),
                "dockerd_pid": daemon.pid,
                "registry_pid": registry.pid,
                "port": registry.port,
            }
        )
    )
    return _env(directory)


def _env(directory: Path) -> int:
    state = _state_file(directory)
    if not state.exists():
        print(f"nothing running (no {state}); run `up`", file=sys.stderr)
        return 1
    raw = json.loads(state.read_text())
    print(f"export DOCKER_HOST=unix://{raw['run_dir']}/docker.sock DOCKER={docker_cli()} DOCKER_BUILDKIT=1")
    print(f"export REGISTRY=127.0.0.1:{raw['port']}/spamops")
    return 0


def _down(directory: Path) -> int:
    state = _state_file(directory)
    if not state.exists():
        return 0
    raw = json.loads(state.read_text())
    _stop_pid(None, raw["registry_pid"], 10)
    _stop_pid(None, raw["dockerd_pid"], 30)
    data_root = Path(raw["data_root"])
    (data_root.parent / f".{data_root.name}.owner").unlink(missing_ok=True)
    shutil.rmtree(raw["run_dir"], ignore_errors=True)
    state.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "env", "down"])
    parser.add_argument("--dir", type=Path, default=Path(".spamops/docker"), help="state and registry data")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="dockerd's images and cache")
    args = parser.parse_args(argv)
    directory = args.dir.absolute()
    if args.command == "up":
        return _up(directory, args.data_root)
    if args.command == "env":
        return _env(directory)
    return _down(directory)


if __name__ == "__main__":
    sys.exit(main())
