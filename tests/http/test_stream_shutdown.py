"""SIGTERM with event streams open: every stream (the change stream, the dashboard's and
OFREP's) ends cleanly, with the chunked body's last chunk, so its client sees an end of stream
and reconnects elsewhere; the server logs no error and exits 0. Before, sse-starlette stopped
the streams without ending their responses: clients saw a body cut off mid-stream (curl exit
18) and uvicorn logged "ASGI callable returned without completing response" for each."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.http.processes import flaggery_process

pytestmark = pytest.mark.slow

STREAMS = (b"/v1/stream", b"/ui/stream", b"/ofrep/v1/events")


def _open_stream(port: int, path: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = b" HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    sock.sendall(b"GET " + path + head)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"transfer-encoding: chunked" in head.lower()
    # The server picks the hop-by-hop Connection header, not the app (it sent keep-alive).
    assert b"\r\nconnection:" not in head.lower(), head
    return sock


def _rest(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_open_streams_end_cleanly_on_sigterm(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], tmp_path) as server:
        streams = [_open_stream(server.port, path) for path in STREAMS]
        server.process.send_signal(signal.SIGTERM)
        endings = [_rest(sock) for sock in streams]
        for sock in streams:
            sock.close()
        assert server.process.wait(30) == 0
    for path, ending in zip(STREAMS, endings, strict=True):
        assert ending.endswith(b"0\r\n\r\n"), (path, ending[-200:])
    log = server.log_path.read_text()
    assert "without completing response" not in log and "Traceback" not in log, log
