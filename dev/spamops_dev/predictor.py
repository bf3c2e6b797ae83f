"""The predictor as production runs it: ``python -m spamops.serving`` in a subprocess on loopback.

Shared by the serving, monitoring, deploy and Kubernetes tests and the benchmarks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from spamops_dev.ports import free_port
from spamops_dev.processes import spawn, stop_pid, wait_ready

HOST = "127.0.0.1"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


@dataclass
class Predictor:
    """One predictor process; ``url`` is its base URL on 127.0.0.1."""

    args: list[str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60) -> Predictor:
        cmd = [
            sys.executable,
            "-m",
            "spamops.serving",
            "--http_port",
            str(self.port),
            "--enable_grpc",
            "false",
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = spawn(cmd, self.log_path, env=env)
        try:
            wait_ready("predictor", self.proc, self._live, timeout, self.log_path)
        except TimeoutError:
            self.stop()
            raise
        return self

    def _live(self) -> bool:
        try:
            return self.get("/v2/health/live").status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 15 s: exactly the process started here."""
        if self.proc is not None:
            stop_pid(self.proc.pid, timeout=15)
            self.proc.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback http URL built here
                return Reply(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), dict(err.headers))

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post_json(self, path: str, doc) -> Reply:
        return self.request("POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def post_raw(self, path: str, body: bytes, content_type: str | None = "application/json") -> Reply:
        return self.request("POST", path, body, {"Content-Type": content_type} if content_type else {})

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as ``{'name{labels}': value}`` (label order as exported)."""
        text = self.get("/metrics").body.decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (0 when absent)."""
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if "=" in p)
        if all(pairs.get(k) == json.dumps(v) for k, v in labels.items()):
            return value
    return 0.0
