"""A real ``flaggery`` process on a uvicorn whose internals changed (simulated by a
``sitecustomize`` that rewrites ``HttpToolsProtocol.on_headers_complete``, as a new admission
check would): it starts, says why once at WARNING (two workers, one parent that chooses),
reports ``flaggery_http_protocol_fallback 1``, serves the flags route through ASGI and keeps
the read deadline."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.http.processes import flaggery_process

pytestmark = pytest.mark.slow

CHANGED_UVICORN = """
from uvicorn.protocols.http import httptools_impl

_original = httptools_impl.HttpToolsProtocol.on_headers_complete


def on_headers_complete(self):  # a changed uvicorn: a new admission check would go here
    _original(self)


httptools_impl.HttpToolsProtocol.on_headers_complete = on_headers_complete
"""


def test_a_changed_uvicorn_falls_back_and_says_so(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CHANGED_UVICORN)
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": python_path}
    args = ["--admin", "--workers", "2", "--prometheus", "--read-timeout", "1"]
    with flaggery_process(args, tmp_path, env) as server:
        client = server.client
        assert client.put("/v1/buckets", params={"amount": 1}).status_code == 200
        assert client.post("/v1/subjects", json=[{"id": 7, "weight": 1}]).status_code == 201
        assert client.get("/v1/subjects/7/flags").json() == {"flags": {}}
        assert "\nflaggery_http_protocol_fallback 1.0\n" in client.get("/metrics").text
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n")  # unfinished
            started, received = time.monotonic(), b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5
        log = server.log_path.read_text()
    warnings = [line for line in log.splitlines() if "protocol internals differ" in line]
    assert len(warnings) == 1 and "HttpToolsProtocol.on_headers_complete changed" in warnings[0]
