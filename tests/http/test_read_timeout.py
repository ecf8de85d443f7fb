"""The read deadline, against a real ``flaggery`` process over raw sockets: a request whose
header block or body never completes, and a connection that never sends anything, are
answered 408 and closed after FLAGGERY_READ_TIMEOUT seconds; complete requests are not."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from flaggery.http.protocol import MAX_HEAD_BYTES
from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

READ_TIMEOUT = 1.0
SLACK = 3.0  # a loaded 2-core machine may run the timer late, never early
HEADERS_ONLY = b"GET /v1/subjects/1/flags HTTP/1.1\r\nHost: localhost\r\n"
HALF_BODY = b"POST /v1/subjects HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n[{"


@pytest.fixture(scope="module", params=["admin", "read-only"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    args = ["--read-timeout", str(READ_TIMEOUT)]
    if request.param == "admin":
        args.append("--admin")
    with flaggery_process(args, tmp_path_factory.mktemp("read-timeout")) as running:
        yield running


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT + SLACK + 5)
    return sock


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    started, received = time.monotonic(), b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [HEADERS_ONLY, HEADERS_ONLY[:10], HALF_BODY, b""],
    ids=["headers", "line", "body", "nothing"],
)
def test_an_unfinished_request_is_cut_off(server: ServerProcess, sent: bytes) -> None:
    with _connect(server) as sock:
        sock.sendall(sent)
        received, elapsed = _until_closed(sock)
    assert READ_TIMEOUT - 0.1 <= elapsed <= READ_TIMEOUT + SLACK
    if sent != HALF_BODY or b"423" not in received:
        assert received.startswith(b"HTTP/1.1 408 "), received
        assert b'"name":"RequestTimeout"' in received and b"FLAGGERY_READ_TIMEOUT" in received
    assert server.process.poll() is None
    assert "Traceback" not in server.log_path.read_text()


def test_a_slow_but_complete_request_is_served(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(HEADERS_ONLY)
        time.sleep(READ_TIMEOUT / 2)
        sock.sendall(b"\r\n")
        first = _response(sock)
        time.sleep(READ_TIMEOUT * 1.5)  # idle between requests: keep-alive's business
        sock.sendall(HEADERS_ONLY + b"\r\n")
        second = _response(sock)
    for response in (first, second):
        assert response.startswith(b"HTTP/1.1 404 "), response  # subject 1 does not exist
        assert response.endswith(b"}}")


def _response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body (it may come in several segments)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_the_deadline_covers_a_trickle(server: ServerProcess) -> None:
    """One byte at a time keeps the connection busy but does not extend the deadline."""
    with _connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in HEADERS_ONLY * 10:
                sock.send(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # the server closed the connection while we were still writing
        elapsed = time.monotonic() - started
    assert elapsed <= READ_TIMEOUT + SLACK


def test_a_request_answered_before_its_body_gets_one_response(server: ServerProcess) -> None:
    """The flags route ignores a GET's body, so it answers before the body arrives; when the
    body never completes, the deadline closes the connection without a second, unrequested
    408 (a pooling proxy would pin it on the next request)."""
    with _connect(server) as sock:
        sock.sendall(HEADERS_ONLY + b"Content-Length: 10\r\n\r\nabc")
        received, elapsed = _until_closed(sock)
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert received.startswith(b"HTTP/1.1 404 ")  # subject 1 does not exist
    assert READ_TIMEOUT - 0.1 <= elapsed <= READ_TIMEOUT + SLACK


KEEP_ALIVE = 5.0  # uvicorn's default timeout_keep_alive, which `flaggery serve` keeps


def test_a_body_arriving_after_the_answer_leaves_a_timer(server: ServerProcess) -> None:
    """Answered before its last byte arrived (the flags route, /healthz, an early error), the
    request then completes and the client falls silent: the keep-alive timeout still closes
    the connection (uvicorn's read of that byte cancelled the timer its answer armed)."""
    heads = [
        HEADERS_ONLY,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"PATCH /v1/buckets HTTP/1.1\r\nHost: x\r\n",  # 405 before the body is read
    ]
    socks = [_connect(server) for _ in heads]
    try:
        for sock, head in zip(socks, heads, strict=True):
            sock.sendall(head + b"Content-Length: 1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 ")
            sock.sendall(b"x")
        started = time.monotonic()
        for sock in socks:
            assert b"HTTP/1.1 " not in _until_closed(sock)[0]  # the rest of the one response
        assert time.monotonic() - started <= KEEP_ALIVE + SLACK
    finally:
        for sock in socks:
            sock.close()


def test_headers_beyond_the_bound_are_431_at_once(server: ServerProcess) -> None:
    """httptools holds a request's head until it is complete: beyond MAX_HEAD_BYTES the
    server answers 431 and closes, long before the read deadline."""
    with _connect(server) as sock:
        sock.sendall(HEADERS_ONLY + b"X-Big: ")
        started = time.monotonic()
        try:
            for _ in range(64):  # 4 MiB, far beyond the bound
                sock.sendall(b"a" * 65536)
        except OSError:
            pass  # closed while we were still writing
        received, _ = _until_closed(sock)
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert b'"name":"RequestHeadersTooLarge"' in received and b"connection: close" in received
    assert elapsed < READ_TIMEOUT


def test_a_large_header_within_the_bound_is_served(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(HEADERS_ONLY + b"X-Big: " + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 404 ")


def test_setting_is_in_the_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flaggery.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--read-timeout" in result.stdout and "FLAGGERY_READ_TIMEOUT" in result.stdout
