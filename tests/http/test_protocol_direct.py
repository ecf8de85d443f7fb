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
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _protocol(
    *, access_log: bool = False, root_path: str = "", clients: Keyring | None = None
) -> tuple[ReadTimeoutProtocol, RecordingTransport, App]:
    fast_path = FlagsFastPath(None, clients or Keyring(Settings()), cors=False)
    fast_path.snapshot_of = lambda: SNAPSHOT
    app = App(fast_path)
    config = Config(
        app, http="httptools", access_log=access_log, root_path=root_path, lifespan="off"
    )
    config.load()  # wraps the app in uvicorn's proxy-headers middleware: looked through
    protocol = ReadTimeoutProtocol(config, ServerState(), {}, read_timeout=60.0)
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


@pytest.mark.parametrize(
    "request_line",
    [
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
