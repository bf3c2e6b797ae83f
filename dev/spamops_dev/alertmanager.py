"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on loopback, routing to one webhook.

Grouping waits are cut to a second so a test sees a delivery within seconds.  Clustering
is off (``--cluster.listen-address=``), otherwise it would listen on all interfaces.
A :class:`WebhookSink` is the receiving end a test points it at.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from spamops_dev.daemon import HOST, Daemon, free_port, http_json, require_binary, wait_for


def alertmanager_config(webhook_url: str) -> dict:
    """Everything to one webhook receiver, grouped by alert name, delivered after 1 s."""
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }


class Alertmanager:
    """One Alertmanager; ``address`` (host:port) is what Prometheus' ``alerting`` section names."""

    def __init__(self, workdir: Path, webhook_url: str | None = None, config: dict | None = None) -> None:
        if (webhook_url is None) == (config is None):
            raise ValueError("give exactly one of webhook_url or config")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.url = f"http://{self.address}"
        self.config_path = self.workdir / "alertmanager.yml"
        if config is None:
            assert webhook_url is not None  # exactly one of the two, checked above
            config = alertmanager_config(webhook_url)
        self.config_path.write_text(yaml.safe_dump(config))
        cmd = [
            require_binary("prometheus-alertmanager", "prometheus-alertmanager"),
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self.daemon = Daemon(cmd, self.workdir / "alertmanager.log", f"{self.url}/-/ready", "alertmanager")

    def start(self) -> Alertmanager:
        self.daemon.start()
        return self

    def stop(self) -> None:
        self.daemon.stop()

    def post_alerts(self, alerts: list[dict]) -> None:
        """Send alerts the way Prometheus does (``POST /api/v2/alerts``)."""
        http_json(f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict]:
        return http_json(f"{self.url}/api/v2/alerts")


class WebhookSink:
    """An HTTP receiver on loopback that records every JSON body posted to it (answers ``status``)."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        self.status = status
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append(json.loads(body))
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate, timeout: float = 20) -> dict:
        """The first received notification for which ``predicate(doc)`` holds."""

        def match():
            return next((doc for doc in list(self.received) if predicate(doc)), None)

        return wait_for(match, timeout, what="a matching webhook notification")
