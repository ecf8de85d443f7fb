"""Issue 18, item 4a against a real server with few file descriptors: OFREP's event stream
needs no token here (no client tokens), and 100 of them on a worker whose limit is 160
descriptors take half (the default FLAGGERY_MAX_STREAMS); the rest are refused 503 with
Retry-After, and writes (SQLite opens its file) and flags keep being served."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

DESCRIPTORS = 160
STREAMS = 100


@contextlib.contextmanager
def _descriptor_limit(soft: int) -> Iterator[None]:
    """Spawned processes inherit this soft RLIMIT_NOFILE (this one keeps its open files)."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert len(os.listdir("/proc/self/fd")) < soft - 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def _open_stream(server: ServerProcess) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET /ofrep/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    return sock, head


def test_streams_beyond_half_the_descriptors_are_refused(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        with _descriptor_limit(DESCRIPTORS):
            server = stack.enter_context(flaggery_process(["--admin"], tmp_path))
        heads = []
        for _ in range(STREAMS):
            sock, head = _open_stream(server)
            stack.callback(sock.close)
            heads.append(head)
        statuses = [head.split(b" ", 2)[1] for head in heads]
        assert statuses.count(b"200") == DESCRIPTORS // 2
        assert statuses.count(b"503") == STREAMS - DESCRIPTORS // 2
        refused = next(head for head in heads if b" 503 " in head)
        assert b"retry-after: 5" in refused.lower()
        client = server.client
        assert client.put("/v1/buckets", params={"amount": 1}).status_code == 200
        assert client.post("/v1/subjects/1", params={"weight": 1}).status_code == 201
        assert client.get("/v1/subjects/1/flags").json() == {"flags": {}}
