"""Free loopback ports: every server a test or ``make`` target starts binds 127.0.0.1 only."""

from __future__ import annotations

import secrets
import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (it can be taken again before use: retry on bind errors)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int, twin_offset: int = 0, low: int = 20000, high: int = 22500) -> list[int]:
    """``count`` distinct free ports, each also free at ``port + twin_offset`` when that is non-zero.

    For servers that open a second port at a fixed offset (SeaweedFS: gRPC at
    +10000). The default range keeps such twins (30000-32500) below Linux's
    ephemeral range (32768+), where ``free_port`` and outgoing connections live.
    """
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    for _ in range(2000):
        port = rng.randrange(low, high)
        if port in chosen:
            continue
        if port_free(port) and (not twin_offset or port_free(port + twin_offset)):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free loopback ports in {low}-{high}")


def listening(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
