"""The flags route answered by flaggery's protocol without ASGI (`flaggery.http.protocol`),
against a real ``flaggery`` process over raw sockets: the same bytes as the ASGI path, keep-alive
and pipelining as uvicorn does them, and everything else left to the app."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

DIRECT = b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: localhost\r\n\r\n"
# A query string makes the protocol leave the request to the app (its ASGI fast path).
THROUGH_ASGI = b"GET /v1/subjects/7/flags?via=asgi HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with flaggery_process(["--admin"], tmp_path_factory.mktemp("direct-flags")) as running:
        client = running.client
        assert client.put("/v1/buckets", params={"amount": 2}).status_code == 200
        assert client.post("/v1/subjects", json=[{"id": 7, "weight": 3}]).status_code == 201
        assert client.post("/v1/features/checkout").status_code == 201
        variant = client.post("/v1/features/checkout/variants/on", params={"make_default": True})
        assert variant.status_code == 201
        # The write's own worker serves it at once (read-your-writes on the admin process).
        assert client.get("/v1/subjects/7/flags").json() == {"flags": {"checkout": "on"}}
        yield running


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """One whole response (headers and a content-length body) from `buffer` and the socket."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {bytes(buffer)!r}"
        buffer += chunk
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = re.search(rb"(?im)^content-length: (\d+)\r$", bytes(buffer[:head_end]))
    total = head_end + (int(length.group(1)) if length else 0)
    while len(buffer) < total:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        buffer += chunk
    response = bytes(buffer[:total])
    del buffer[:total]
    return response


def _without_date(response: bytes) -> bytes:
    return re.sub(rb"(?im)^date: [^\r]*\r\n", b"", response)


def _closed(sock: socket.socket) -> bool:
    return sock.recv(1) == b""


def test_the_direct_answer_is_the_asgi_answer(server: ServerProcess) -> None:
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(DIRECT)
        direct = _read_response(sock, buffer)
        sock.sendall(THROUGH_ASGI)
        through_asgi = _read_response(sock, buffer)
    assert direct.startswith(b"HTTP/1.1 200 OK\r\n")
    assert direct.endswith(b'\r\n\r\n{"flags":{"checkout":"on"}}')
    assert re.search(rb"(?im)^date: ", direct) and re.search(rb"(?im)^etag: ", direct)
    assert _without_date(direct) == _without_date(through_asgi)


@pytest.mark.parametrize("path", [b"/v1/keys/ana%40example.com/flags", b"/v1/keys/7/flags"])
def test_a_key_is_answered_directly_as_through_asgi(server: ServerProcess, path: bytes) -> None:
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        direct = _read_response(sock, buffer)
        sock.sendall(b"GET " + path + b"?via=asgi HTTP/1.1\r\nHost: localhost\r\n\r\n")
        through_asgi = _read_response(sock, buffer)
    assert direct.endswith(b'\r\n\r\n{"flags":{"checkout":"on"}}')
    assert _without_date(direct) == _without_date(through_asgi)


def test_keep_alive_and_pipelining_keep_the_order(server: ServerProcess) -> None:
    missing = b"GET /v1/subjects/8/flags HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(DIRECT + missing + THROUGH_ASGI + DIRECT)  # one segment, four requests
        responses = [_read_response(sock, buffer) for _ in range(4)]
        sock.sendall(DIRECT)  # the connection is still open
        responses.append(_read_response(sock, buffer))
    statuses = [response.split(b" ", 2)[1] for response in responses]
    assert statuses == [b"200", b"404", b"200", b"200", b"200"]
    assert b'"name":"SubjectNotFound"' in responses[1]
    assert len({_without_date(response) for response in responses if b" 200 " in response}) == 1


def test_a_matching_etag_is_a_304_without_body(server: ServerProcess) -> None:
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(DIRECT)
        etag = re.search(rb"(?im)^etag: ([^\r]*)\r$", _read_response(sock, buffer))
        assert etag is not None
        conditional = b"\r\nIf-None-Match: " + etag.group(1) + b"\r\n\r\n"
        sock.sendall(DIRECT.replace(b"\r\n\r\n", conditional))
        not_modified = _read_response(sock, buffer)
    assert not_modified.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert not_modified.endswith(b"\r\n\r\n") and b"content-length" not in not_modified


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/subjects/7/flags HTTP/1.0\r\nHost: localhost\r\n\r\n",
        b"GET /v1/subjects/7/flags HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",  # as uvicorn
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ],
    ids=["http-1.0", "http-1.0-keep-alive", "connection-close"],
)
def test_a_connection_that_should_close_is_closed(
    server: ServerProcess, request_bytes: bytes
) -> None:
    with _connect(server) as sock:
        sock.sendall(request_bytes)
        response = _read_response(sock, bytearray())
        assert b"\r\nconnection: close\r\n" in response
        assert response.endswith(b'{"flags":{"checkout":"on"}}')
        assert _closed(sock)


def test_what_the_fast_path_does_not_answer_goes_to_the_app(server: ServerProcess) -> None:
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(b"HEAD /v1/subjects/7/flags HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        sock.sendall(b"GET /v1/subjects/%37/flags HTTP/1.1\r\nHost: localhost\r\n\r\n")  # %37 is 7
        assert _read_response(sock, buffer).endswith(b'{"flags":{"checkout":"on"}}')
        sock.sendall(b"GET /v1/subjects/x/flags HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b" 422 " in _read_response(sock, buffer).split(b"\r\n", 1)[0]
    assert "Traceback" not in Path(server.log_path).read_text()


def test_the_direct_path_keeps_the_host_rule(server: ServerProcess) -> None:
    """An open loopback server (the README's first command) answers the flags route only to
    a loopback Host, on the direct path too (issue 18, item 2: DNS rebinding)."""
    rebound = DIRECT.replace(b"Host: localhost", b"Host: rebind.attacker.example:8000")
    with _connect(server) as sock:
        buffer = bytearray()
        sock.sendall(rebound + DIRECT)
        refused, answered = _read_response(sock, buffer), _read_response(sock, buffer)
    assert refused.startswith(b"HTTP/1.1 421 ") and b'"name":"MisdirectedRequest"' in refused
    assert answered.startswith(b"HTTP/1.1 200 OK\r\n")


def test_two_authorization_headers_are_a_400_on_both_paths(tmp_path: Path) -> None:
    """One credential rule (issue 24 section 3): two Authorization headers are refused, 400,
    by the direct path and by ASGI alike, never answered from whichever one came first."""
    secret = b"client-s3cret-token"
    env = {"FLAGGERY_CLIENT_TOKENS": secret.decode()}
    with flaggery_process(["--admin"], tmp_path, env) as running:
        client = running.client
        client.headers["Authorization"] = f"Bearer {secret.decode()}"
        assert client.put("/v1/buckets", params={"amount": 1}).status_code == 200
        assert client.post("/v1/subjects", json=[{"id": 7, "weight": 1}]).status_code == 201
        good = b"Authorization: Bearer " + secret + b"\r\n"
        twice = good + b"Authorization: Bearer wrong\r\n"
        with _connect(running) as sock:
            buffer = bytearray()
            for request in (DIRECT, THROUGH_ASGI):
                sock.sendall(request.replace(b"\r\n\r\n", b"\r\n" + good + b"\r\n"))
                assert _read_response(sock, buffer).startswith(b"HTTP/1.1 200 OK\r\n")
                sock.sendall(request.replace(b"\r\n\r\n", b"\r\n" + twice + b"\r\n"))
                response = _read_response(sock, buffer)
                assert response.startswith(b"HTTP/1.1 400 ")
                assert b'"name":"AmbiguousCredentials"' in response
