"""GET /v1/stream against a real server process (issue 11, items 3 and 9): one event per
committed revision with id = revision; resume with Last-Event-ID from retained history, and a
reload event when it is gone; keep-alive comments; no token, no stream."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import msgspec

from tests.http.conftest import MakeClient
from tests.http.helpers import fails
from tests.http.processes import flaggery_process, flaggery_server
from tests.http.sse import Event, events

TOKENS = "ops:admin:admin-secret grafana:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}
READER = {"Authorization": "Bearer reader-secret"}


async def test_no_token_no_stream(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    fails(await client.get("/v1/stream"), 401, "Unauthorized")
    bad = {"Authorization": "Bearer nope"}
    fails(await client.get("/v1/stream", headers=bad), 401, "Unauthorized")
    headers = {**READER, "Last-Event-ID": "x"}
    fails(await client.get("/v1/stream", headers=headers), 422, "RequestValidationError")


def _take(client_stream: object, count: int) -> list[Event]:
    return list(itertools.islice(client_stream, count))  # type: ignore[call-overload]


def test_events_resume_and_reload(db_url: str, tmp_path: Path) -> None:
    env = {"FLAGGERY_TOKENS": TOKENS, "FLAGGERY_STREAM_KEEPALIVE": "0.2"}
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    with flaggery_server(args, tmp_path, env) as client:
        client.headers.update(ADMIN)
        client.post("/v1/features/f").raise_for_status()  # revision 1
        with client.stream("GET", "/v1/stream", headers=READER) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-flaggery-revision"] == "1"  # where the stream starts
            stream = events(response)
            client.post("/v1/features/f/variants/A").raise_for_status()  # 2
            client.post("/v1/features/g").raise_for_status()  # 3
            got = _take(stream, 2)
        assert [(e.id, e.event) for e in got] == [("2", "change"), ("3", "change")]
        data = msgspec.json.decode(got[0].data[0])
        assert data["operation"] == "add_variant" and data["facts"][0]["name"] == "f"

        # Dropped after revision 1: 2 and 3 are replayed, then the next write follows.
        with client.stream("GET", "/v1/stream", headers={**READER, "Last-Event-ID": "1"}) as r:
            stream = events(r)
            replayed = _take(stream, 2)
            client.post("/v1/features/h").raise_for_status()  # 4
            (live,) = _take(stream, 1)
        assert [e.id for e in [*replayed, live]] == ["2", "3", "4"]

        # A client from another history (ahead of this server) is told to reload.
        with client.stream("GET", "/v1/stream", headers={**READER, "Last-Event-ID": "99"}) as r:
            (reload,) = _take(events(r), 1)
        assert (reload.id, reload.event) == ("4", "reload")


def test_keep_alive_comments(tmp_path: Path) -> None:
    env = {"FLAGGERY_STREAM_KEEPALIVE": "0.2"}
    with (
        flaggery_server(["--admin"], tmp_path, env) as client,
        client.stream("GET", "/v1/stream") as response,
    ):
        lines = list(itertools.islice(response.iter_lines(), 6))
    assert lines[0] == ": open"  # at once: a follower knows the stream works
    comments = [line for line in lines[1:] if line.startswith(":")]
    assert comments, "no keep-alive comment within 6 lines"


def test_http_1_0_clients_get_close_delimited_streams(tmp_path: Path) -> None:
    """HTTP/1.0 has no chunked framing (issue 18 #19): each event stream's body is its bytes
    as they are, ended by the close, as h11 sends it."""
    env = {"FLAGGERY_STREAM_KEEPALIVE": "0.2"}
    with flaggery_process(["--admin"], tmp_path, env) as server:
        for path in (b"/v1/stream", b"/ofrep/v1/events", b"/ui/stream"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += sock.recv(65536)
                head, body = received.split(b"\r\n\r\n", 1)
                if path != b"/ofrep/v1/events":  # OFREP's stream pings less often
                    while not body:
                        body += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), (path, head)
            assert b"transfer-encoding" not in head.lower(), (path, head)
            assert b"\r\nconnection: close" in head, (path, head)
            assert body == b"" or body.startswith((b": ping", b": open")), (path, body)
