"""Database URLs that cannot work, for tests of what the user is told."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A loopback TCP port nothing listens on (just released by the OS, so refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_postgres_url(password: str = "s3cret") -> str:
    return f"postgresql://flaggery:{password}@127.0.0.1:{closed_port()}/flaggery"
