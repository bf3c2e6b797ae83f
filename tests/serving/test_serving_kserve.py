"""The predictor sits on KServe by its extension points; what it still borrows is checked on every KServe tested.

``make test-serving-compat`` runs this suite on the second supported KServe SDK,
so these checks run on both versions (docs/serving.md, "KServe versions").
"""

from __future__ import annotations

import ast
import socket
from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from kserve import ModelServer
from kserve.protocol.rest.server import RESTServer

from spamops.serving import server as predictor_server
from spamops_dev.predictor import HOST, free_port

SRC = Path(__file__).resolve().parents[2] / "src" / "spamops"


def kserve_aliases(tree: ast.Module) -> set[str]:
    """Names a module binds to KServe modules (``import kserve.x as y``, ``from kserve import model_server``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "kserve"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kserve":
            names |= {a.asname or a.name for a in node.names if a.name[:1].islower()}  # modules, not classes
    return names


def test_no_kserve_module_global_is_replaced():
    # Replacing e.g. kserve.model_server.RESTServer changes KServe for everything in the process,
    # and nothing notices when an upgrade stops reading the name.
    replaced = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = kserve_aliases(tree)
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Attribute):
                    root = target.value
                    while isinstance(root, ast.Attribute):
                        root = root.value
                    if isinstance(root, ast.Name) and root.id in aliases:
                        replaced.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {ast.unparse(target)}")
    assert replaced == []


def test_start_up_finds_everything_it_borrows_from_this_kserve():
    predictor_server.check_kserve()  # raises, naming what moved, on a KServe that moved it


def _without_uvicorn_server(monkeypatch):
    original = RESTServer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.http_server = self.__dict__.pop("_server")  # as if an upgrade renamed it

    monkeypatch.setattr(RESTServer, "__init__", init)


@pytest.mark.parametrize(
    ("move", "named"),
    [
        (_without_uvicorn_server, "RESTServer._server"),
        (lambda mp: mp.delattr(RESTServer, "create_application"), "RESTServer.create_application"),
        (lambda mp: mp.setattr(ModelServer, "stop", lambda self, sig: None), "self._grpc_server"),
        (lambda mp: mp.delattr(ModelServer, "register_signal_handler"), "ModelServer.register_signal_handler"),
    ],
    ids=["uvicorn-server", "create-application", "stop", "signal-handler"],
)
def test_a_kserve_that_moved_what_start_up_borrows_is_refused_loudly(monkeypatch, move, named):
    move(monkeypatch)  # what a KServe upgrade could do
    with pytest.raises(predictor_server.KServeIncompatible) as refused:
        predictor_server.check_kserve()
    assert f"kserve {version('kserve')} is not supported" in str(refused.value)
    assert named in str(refused.value)


def port_is_free(port: int) -> bool:
    """Nobody listens on ``port`` any more (connections closed a moment ago may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def test_sigterm_stops_rest_and_grpc_and_exits_0(start_predictor, model_dir):
    # KServe's own stop() shuts gRPC down through the server start-up built: if it could not
    # find it, gRPC would keep the process alive until the SIGKILL.
    grpc_port = free_port()
    server = start_predictor("--model_dir", str(model_dir), "--enable_grpc", "true", "--grpc_port", str(grpc_port))
    with grpc.insecure_channel(f"{HOST}:{grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
    assert server.get("/v2/health/ready").status == 200
    server.stop()  # SIGTERM; SIGKILL only after 15 s
    assert server.proc.returncode == 0, server.log()[-2000:]
    assert port_is_free(server.port) and port_is_free(grpc_port)
