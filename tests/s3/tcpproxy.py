"""A loopback TCP proxy to the real S3 server, for tests that interfere with one exchange.

Subclasses decide per chunk (:meth:`TcpProxy.on_chunk`): forward it, or drop the connection.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards every connection to ``127.0.0.1:upstream_port``; ``port`` is where clients connect."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def on_chunk(self, chunk: bytes, upstream: bool) -> bool:
        """Called before ``chunk`` is forwarded (``upstream``: client to server); False drops the connection."""
        return True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if not self.on_chunk(chunk, upstream):
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self.listener.close()
