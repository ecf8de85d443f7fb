"""Which requests flaggery's protocol answers itself, without ASGI: in process, with a transport
that records writes, so the test sees whether the answer was written while the request was
parsed (the direct path) or only after the app's task ran (ASGI). No database: the fast path
reads a snapshot built from an engine state. tests/http/test_direct_flags.py checks the same
path's bytes against a real server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from flaggery.access import Keyring
from flaggery.engine import build_snapshot
from flaggery.engine.model import Feature, Subject
from flaggery.http.deadline import DeadlineProtocol
from flaggery.http.protocol import ReadTimeoutProtocol
from flaggery.http.serving import FlagsFastPath
from flaggery.settings import Settings
from tests.engine.strategies import make_state, minute

SNAPSHOT = build_snapshot(
    make_state(
        buckets=[1],
        subjects={7: Subject(weight=1, bucket=1)},
        features=[Feature("checkout", ("on", "off"), default="on")],
    ),
    minute(0),
)
FLAGS = b'{"flags":{"checkout":"on"}}'
UUID = "6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f"


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise RuntimeError("unable to perform operation on a closed transport")  # as uvloop
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class App:
    """An ASGI app with flaggery's fast path that answers anything else 204 and counts calls."""

    def __init__(self, fast_path: FlagsFastPath) -> None:
        self.fast_path = fast_path
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if scope["method"] == "GET" and await self.fast_path.serve(scope, send):
            return
        if scope["path"] == "/stream":  # a body without Content-Length, as the event streams
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for data in (b"data: 1\n\n", b"data: 2\n\n"):
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _protocol(
    *,
    access_log: bool = False,
    root_path: str = "",
    clients: Keyring | None = None,
    protocol_class: type[DeadlineProtocol] = ReadTimeoutProtocol,
    read_timeout: float = 60.0,
    limit_concurrency: int | None = None,
) -> tuple[DeadlineProtocol, RecordingTransport, App]:
    fast_path = FlagsFastPath(None, clients or Keyring(Settings()), cors=False)
    fast_path.snapshot_of = lambda: SNAPSHOT
    app = App(fast_path)
    config = Config(
        app,
        http="httptools",
        access_log=access_log,
        root_path=root_path,
        lifespan="off",
        limit_concurrency=limit_concurrency,
    )
    config.load()  # wraps the app in uvicorn's proxy-headers middleware: looked through
    protocol = protocol_class(config, ServerState(), {}, read_timeout=read_timeout)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, app


async def test_a_plain_flags_get_is_written_while_it_is_parsed() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.writes) == 1 and app.calls == 0  # no task, no ASGI
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n" + FLAGS)
    assert not transport.closed and protocol.timeout_keep_alive_task is not None
    protocol.connection_lost(None)


async def test_a_direct_answer_carries_the_date_uvicorn_set_last() -> None:
    protocol, transport, _ = _protocol()
    request = b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n"
    for date in (b"Mon, 07 Dec 2026 20:00:00 GMT", b"Mon, 07 Dec 2026 20:00:01 GMT"):
        # uvicorn's main loop sets a new list once a second
        protocol.server_state.default_headers = [(b"date", date), (b"server", b"uvicorn")]
        protocol.data_received(request)
        head = b"HTTP/1.1 200 OK\r\ndate: " + date + b"\r\nserver: uvicorn\r\n"
        assert transport.writes[-1].startswith(head)
    assert len(transport.writes) == 2
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (b"/v1/keys/7/flags", "7"),  # a registered subject, by its canonical id
        (
            b"/v1/keys/6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f/flags",
            "6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f",
        ),
        (b"/v1/keys/ana%40example.com/flags", "ana@example.com"),
        (b"/v1/keys/a%2Fb%20c%E2%82%AC/flags", "a/b c\u20ac"),
    ],
)
async def test_a_key_flags_get_is_written_while_it_is_parsed(path: bytes, key: str) -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.writes) == 1 and app.calls == 0  # no task, no ASGI
    etag = SNAPSHOT.evaluate(key).view.etag
    assert b"\r\netag: " + etag + b"\r\n" in transport.writes[0]
    assert transport.writes[0].endswith(b"\r\n\r\n" + FLAGS)
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /v1/keys//flags",  # an empty key: the router's 400
        b"GET /v1/keys/a%00b/flags",  # NUL: the router's 400
        b"GET /v1/keys/%FF/flags",  # not UTF-8: the router's 400
        b"GET /v1/keys/%ED%A0%80/flags",  # an encoded surrogate is not UTF-8 either
        b"GET /v1/keys/k/flags#fragment",
        b"HEAD /v1/subjects/7/flags",
        b"GET /v1/subjects/7/flags?x=1",
        b"GET /v1/subjects/%37/flags",
        b"GET /v1/subjects/8/flags",  # unknown: the router's 404
        b"GET /v1/subjects/7",
        b"POST /v1/subjects/7/flags",
    ],
)
async def test_anything_else_goes_through_the_app(request_line: bytes) -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(request_line + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes
    protocol.connection_lost(None)


@pytest.mark.parametrize("options", [{"access_log": True}, {"root_path": "/api"}])
async def test_access_logs_and_root_paths_keep_the_asgi_path(options: dict[str, Any]) -> None:
    protocol, transport, app = _protocol(**options)
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert app.calls == 1
    protocol.connection_lost(None)


async def test_a_missing_client_token_goes_to_the_app_for_its_401() -> None:
    clients = Keyring(Settings(client_tokens="s3cret-client-token"))
    protocol, transport, app = _protocol(clients=clients)
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert app.calls == 1
    protocol.data_received(
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nAuthorization: Bearer s3cret-client-token\r\n\r\n"
    )
    assert app.calls == 1 and transport.writes[-1].endswith(FLAGS)  # answered directly
    protocol.connection_lost(None)


async def test_a_request_pipelined_behind_one_in_flight_waits_its_turn() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(
        b"GET /v1/subjects/8/flags HTTP/1.1\r\nHost: x\r\n\r\n"  # through the app
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert transport.writes == []  # the second is not answered before the first
    await asyncio.sleep(0.05)
    assert app.calls == 2
    assert transport.writes[-1].endswith(FLAGS)
    protocol.connection_lost(None)


async def test_http_1_0_is_answered_and_closed() -> None:
    protocol, transport, _ = _protocol()
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.0\r\n\r\n")
    assert len(transport.writes) == 1 and b"\r\nconnection: close\r\n" in transport.writes[0]
    assert transport.closed
    protocol.connection_lost(None)


async def test_a_client_that_stops_reading_and_leaves_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Answers fill the socket until writes pause; the next request goes through ASGI and waits
    for the socket to drain, one more is queued behind it, and the client hangs up. uvicorn
    marks only the newest (queued) cycle disconnected: the waiting one must be marked too, or
    it writes to the closed transport and logs an error for every such client."""
    protocol, transport, app = _protocol()
    uvicorn_log = logging.getLogger("uvicorn.error")  # it does not propagate to the root
    uvicorn_log.addHandler(caplog.handler)
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    protocol.pause_writing()  # the client stopped reading: the socket is full
    protocol.data_received(
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n"  # through ASGI, waits
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n"  # queued behind it
    )
    await asyncio.sleep(0.01)
    assert app.calls == 1 and len(transport.writes) == 1
    transport.close()
    protocol.connection_lost(None)
    await asyncio.sleep(0.01)
    uvicorn_log.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: identity\r\n\r\n",
        b"Transfer-Encoding: xchunked\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
        b"Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    ],
)
async def test_a_flags_get_the_parser_rejects_gets_its_400_alone(framing: bytes) -> None:
    """The direct answer waits for the parser's verdict on the whole request: never a 200
    followed by uvicorn's 400 (a second, unrequested response)."""
    protocol, transport, _ = _protocol()
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n" + framing)
    await asyncio.sleep(0.01)
    assert [w.split(b"\r\n", 1)[0] for w in transport.writes] == [b"HTTP/1.1 400 Bad Request"]
    assert transport.closed
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 2\r\n\r\nab", b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"],
)
async def test_a_flags_get_with_a_body_goes_through_the_app(framing: bytes) -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n" + framing)
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert app.calls == 1 and len(transport.writes) == 2 and transport.writes[-1] == FLAGS


@pytest.mark.parametrize("path", [b"/v1/subjects/7/flags", b"/healthz"])
async def test_a_body_arriving_after_the_answer_leaves_a_keep_alive_timer(path: bytes) -> None:
    """Answered before its last byte arrived: uvicorn's read of that byte cancels the
    keep-alive timer it armed at the answer; the connection must not be left with none."""
    protocol, transport, app = _protocol()
    protocol.data_received(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes
    protocol.data_received(b"x")
    assert protocol.timeout_keep_alive_task is not None
    protocol.connection_lost(None)


async def test_several_if_none_match_lines_are_one_list() -> None:
    etag = SNAPSHOT.flags_etag(7)
    protocol, transport, _ = _protocol()
    protocol.data_received(
        b'GET /v1/subjects/7/flags HTTP/1.1\r\nIf-None-Match: "other"\r\n'
        b"If-None-Match: " + etag + b"\r\n\r\n"
    )
    assert transport.writes[0].startswith(b"HTTP/1.1 304 ")
    protocol.connection_lost(None)


async def test_an_http_1_0_stream_is_close_delimited() -> None:
    protocol, transport, _ = _protocol()
    protocol.data_received(b"GET /stream HTTP/1.0\r\n\r\n")
    await asyncio.sleep(0.01)
    head, body = b"".join(transport.writes).split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head
    assert body == b"data: 1\n\ndata: 2\n\n" and transport.closed
    protocol.connection_lost(None)


async def test_an_http_1_1_stream_stays_chunked() -> None:
    protocol, transport, _ = _protocol()
    protocol.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.01)
    assert b"transfer-encoding: chunked" in transport.writes[0]
    assert b"".join(transport.writes).endswith(b"0\r\n\r\n") and not transport.closed
    protocol.connection_lost(None)


async def test_uvicorns_concurrency_limit_holds_for_the_flags_route() -> None:
    """``limit_concurrency`` is checked where a direct answer would skip it: over it, the
    flags route gets uvicorn's 503 like any other."""
    protocol, transport, app = _protocol(limit_concurrency=1)
    protocol.connections.add(protocol)  # as uvicorn's server does on connect: at the limit
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert transport.writes[0].startswith(b"HTTP/1.1 503 ") and app.calls == 0
    protocol.connection_lost(None)


async def test_a_malformed_body_after_the_answer_closes_without_a_second_response() -> None:
    """Through ASGI too: a GET answered before its chunked body arrived, whose body then
    turns out malformed, gets no 400 after its 200; the connection is closed."""
    protocol, transport, app = _protocol()
    protocol.data_received(
        b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes[-1] == FLAGS
    protocol.data_received(b"zz\r\n")  # not a chunk size
    assert [w for w in transport.writes if w.startswith(b"HTTP/1.1 ")] == transport.writes[:1]
    assert transport.closed
    protocol.connection_lost(None)
