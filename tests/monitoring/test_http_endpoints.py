"""The monitor's and the retrain trigger's HTTP endpoints follow the predictor's conventions.

Both run as their CLI commands start them (``spamops monitor --serve``, ``spamops trigger
serve``) and are called over HTTP as a client would: a refusal is a JSON body with
``error`` and ``reason`` (400 for a bad request, 404 for an unknown path, 405 for a wrong
method), and a body over the limit is refused from its ``Content-Length`` before it is
read, or as soon as a chunked one passes the limit.  No control plane is needed: the
trigger's refusals never reach the cluster, and its kubeconfig names a port where nothing
listens (503, so Alertmanager retries).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spamops.deploy.render import helm_binary
from spamops.monitoring.alert_receiver import MAX_BODY
from spamops.monitoring.server import MAX_FEEDBACK_BYTES
from spamops_dev.daemon import HOST, Daemon, free_port

SPAMOPS = [sys.executable, "-m", "spamops"]
CHART = Path(__file__).resolve().parents[2] / "helm" / "spamops"


def unreachable_kubeconfig(path: Path) -> Path:
    cluster = {"name": "c", "cluster": {"server": f"https://{HOST}:{free_port()}"}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def quality_args(tmp: Path) -> list[str]:
    """The monitor's inference log (empty) and feedback URIs."""
    (tmp / "log").mkdir(exist_ok=True)
    return ["--inference-log", str(tmp / "log"), "--feedback", str(tmp / "feedback")]


class Endpoint:
    """One server started by its CLI command; ``post`` is the path that takes a body, ``limit`` its body limit."""

    def __init__(self, name: str, cmd: list[str], port: int, post: str, json_type: str, limit: int, log: Path):
        self.name, self.port, self.post_path, self.json_type, self.limit = name, port, post, json_type, limit
        self.daemon = Daemon(cmd, log, f"http://{HOST}:{port}/healthz", name)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module", params=["monitor", "trigger"])
def endpoint(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    port = free_port()
    listen = ["--bind", HOST, "--port", str(port)]
    if request.param == "monitor":
        cmd = [*SPAMOPS, "monitor", "--serve", "--no-drift", *listen, "--interval", "60", *quality_args(tmp)]
        server = Endpoint("monitor", cmd, port, "/feedback", "application/json", MAX_FEEDBACK_BYTES, tmp / "log.txt")
    else:
        cmd = [*SPAMOPS, "trigger", "serve", *listen, "--kubeconfig", str(unreachable_kubeconfig(tmp / "kubeconfig"))]
        server = Endpoint("trigger", cmd, port, "/alerts", "application/json", MAX_BODY, tmp / "log.txt")
    server.daemon.start()
    yield server
    server.daemon.stop()


def refusal(status: int, content_type: str | None, body: bytes) -> tuple[int, str]:
    """``(status, reason)`` of a refusal, after checking it is the JSON ``{"error", "reason"}`` of the convention."""
    assert content_type == "application/json", (status, content_type, body)
    doc = json.loads(body)
    assert isinstance(doc["error"], str) and doc["error"], doc
    return status, doc["reason"]


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(endpoint):
    """Only the headers go out: the answer comes without the server waiting for a single body byte."""
    with socket.create_connection((HOST, endpoint.port), timeout=10) as sock:
        sock.sendall(
            f"POST {endpoint.post_path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {endpoint.json_type}\r\n"
            f"Content-Length: {endpoint.limit + 1}\r\n\r\n".encode()
        )
        resp = http.client.HTTPResponse(sock)
        resp.begin()  # a server waiting for the body would time out here
        status, content_type, body = resp.status, resp.getheader("Content-Type"), resp.read()
    assert refusal(status, content_type, body) == (400, "body_too_large")
    assert str(endpoint.limit) in json.loads(body)["error"]  # the limit to stay under


def test_a_chunked_body_over_the_limit_is_refused(endpoint):
    conn = http.client.HTTPConnection(HOST, endpoint.port, timeout=30)
    chunks = (b"[" if i == 0 else b" " * 65536 for i in range(endpoint.limit // 65536 + 2))
    conn.request(
        "POST", endpoint.post_path, body=chunks, headers={"Content-Type": endpoint.json_type}, encode_chunked=True
    )
    resp = conn.getresponse()
    answer = refusal(resp.status, resp.getheader("Content-Type"), resp.read())
    conn.close()
    assert answer == (400, "body_too_large")


def test_malformed_json_is_a_400_naming_it(endpoint):
    answer = refusal(
        *endpoint.request("POST", endpoint.post_path, b'{"alerts": [', {"Content-Type": "application/json"})
    )
    assert answer == (400, "invalid_json")


def test_a_body_of_the_wrong_content_type_is_a_400_naming_it(endpoint):
    """``curl -d`` sends form encoding: the answer says which Content-Type to send."""
    status, content_type, body = endpoint.request(
        "POST", endpoint.post_path, b"id=x&label=spam", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert refusal(status, content_type, body) == (400, "unsupported_content_type")
    assert "application/json" in json.loads(body)["error"]


def test_an_unknown_path_and_a_wrong_method_are_refused_as_json(endpoint):
    status, content_type, body = endpoint.request("GET", "/no/such/path")
    assert refusal(status, content_type, body) == (404, "unknown_path")
    assert endpoint.post_path in json.loads(body)["error"]  # where to go instead
    assert refusal(*endpoint.request("POST", "/no/such/path", b"{}", {"Content-Type": "application/json"})) == (
        404,
        "unknown_path",
    )
    assert refusal(*endpoint.request("GET", endpoint.post_path)) == (405, "method_not_allowed")
    assert endpoint.request("GET", "/healthz")[0] == 200


def test_what_is_refused_changes_nothing_and_the_server_keeps_answering(endpoint, tmp_path):
    status, _, body = endpoint.request("GET", "/healthz")
    assert status == 200 and json.loads(body)
    if endpoint.name == "trigger":  # a real notification: the unreachable API server is a 503, retried
        note = {"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "A"}}]}
        answer = refusal(
            *endpoint.request("POST", "/alerts", json.dumps(note).encode(), {"Content-Type": "application/json"})
        )
        assert answer == (503, "cluster_unavailable")
    else:  # labels for ids the (empty) log does not hold: refused whole, every row named
        status, content_type, body = endpoint.request(
            "POST", "/feedback", b"id,label\nx,spam\n", {"Content-Type": "text/csv"}
        )
        assert refusal(status, content_type, body) == (400, "invalid_feedback") and len(json.loads(body)["rows"]) == 1


@pytest.mark.parametrize("name", ["monitor", "trigger"])
def test_a_port_that_cannot_be_listened_on_is_one_line_and_exit_2(name, tmp_path):
    if name == "monitor":
        command = ["monitor", "--serve", "--no-drift", *quality_args(tmp_path)]
    else:
        command = ["trigger", "serve", "--kubeconfig", str(unreachable_kubeconfig(tmp_path / "kubeconfig"))]
    with socket.create_server((HOST, 0)) as taken:  # the port is in use
        port = taken.getsockname()[1]
        run = subprocess.run(
            [*SPAMOPS, *command, "--bind", HOST, "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert f"--port {port}" in line, line
    run = subprocess.run([*SPAMOPS, *command, "--port", "99999"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert "--port 99999" in line, line


def test_the_charts_ports_and_probes_are_the_ones_the_commands_serve(tmp_path):
    """The chart's trigger probe is answered by the command the chart runs; each --port is the named containerPort."""
    values = CHART / "ci" / "monitoring-values.yaml"
    out = subprocess.run(
        [helm_binary(), "template", "spamops", str(CHART), "-f", str(values)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    containers = {
        c["name"]: c
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    for name in ("monitor", "trigger"):
        container = containers[name]
        argv = [*container["command"], *container.get("args", [])]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        [flag] = [a for a in argv if a.startswith("--port=")]
        assert int(flag.split("=")[1]) in ports.values(), (name, argv, ports)
    trigger = containers["trigger"]
    probe = trigger["readinessProbe"]["httpGet"]
    argv = [*trigger["command"], *trigger.get("args", [])]
    assert argv[:3] == ["spamops", "trigger", "serve"]
    port = free_port()
    argv = [a for a in argv[1:] if not a.startswith("--port=")] + ["--port", str(port), "--bind", HOST]
    argv += ["--kubeconfig", str(unreachable_kubeconfig(tmp_path / "kubeconfig"))]
    daemon = Daemon([*SPAMOPS, *argv], tmp_path / "trigger.log", f"http://{HOST}:{port}{probe['path']}", "trigger")
    daemon.start()  # waits until the probe's path answers 200
    daemon.stop()
