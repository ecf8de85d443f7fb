"""The behaviour half of the start-up check (`flaggery.http.protocol_guard`): flaggery's
protocol driven over an in-memory transport, without running an event loop, through each
internal it relies on. Every check raises AssertionError (or the error of a missing name)
when uvicorn or httptools behave otherwise."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from flaggery.access import Keyring
from flaggery.http.protocol import ReadTimeoutProtocol
from flaggery.http.serving import FlagsFastPath, Headers
from flaggery.settings import Settings

__all__ = ["probe"]

# What flaggery's protocol calls through super() or by name, beyond what the exchanges reach.
_OVERRIDDEN = (
    "_start_asgi_task",
    "_unset_keepalive_if_required",
    "timeout_keep_alive_handler",
    "send_400_response",
)
_ANSWERED = b"/answered"
_QUIET = logging.getLogger(__name__ + ".uvicorn")
_QUIET.disabled = True
_BODY = b"probe"


def probe(loop: asyncio.AbstractEventLoop) -> None:
    """Drive flaggery's protocol through a direct answer, an ASGI cycle, an HTTP/1.0
    close-delimited body, a rejected framing and a malformed body after an answer, on `loop`
    (which is never run)."""
    for name in _OVERRIDDEN:
        assert callable(getattr(HttpToolsProtocol, name, None)), f"no HttpToolsProtocol.{name}"
    protocol, transport = _connect(loop)
    protocol.data_received(b"GET /answered HTTP/1.1\r\nHost: p\r\n\r\n")
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n" + _BODY)
    assert protocol.timeout_keep_alive_task is not None, "no keep-alive timer after an answer"
    assert not protocol.started, "a direct answer started an ASGI task"
    protocol.data_received(b"GET /other HTTP/1.1\r\nHost: p\r\n\r\n")
    cycle = _started(protocol)
    assert not (cycle.response_started or cycle.response_complete or cycle.disconnected)
    _respond(cycle, [(b"content-length", b"5")], more=False)
    assert cycle.response_complete and transport.writes[-1] == _BODY
    assert protocol.timeout_keep_alive_task is not None, "no keep-alive timer after ASGI"
    protocol.data_received(b"GET /stream HTTP/1.0\r\n\r\n")
    _respond(_started(protocol), [(b"content-type", b"text/event-stream")], more=True)
    assert b"transfer-encoding" not in transport.writes[-2], "HTTP/1.0 body framed as chunked"
    assert transport.writes[-1] == _BODY and not transport.closed
    run_now(_started(protocol).send({"type": "http.response.body", "body": b""}))
    assert transport.closed, "an HTTP/1.0 close-delimited body did not end with a close"
    protocol.connection_lost(None)
    protocol, transport = _connect(loop)
    protocol.data_received(b"GET /answered HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n")
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 400 ")
    protocol.connection_lost(None)
    protocol, transport = _connect(loop)
    protocol.data_received(b"GET /other HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    _respond(_started(protocol), [(b"content-length", b"5")], more=False)
    protocol.data_received(b"zz\r\n")  # a malformed body after the answer
    assert len(transport.writes) == 2 and transport.closed, "a second response after an answer"
    protocol.connection_lost(None)


def run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that must not wait for anything (uvicorn's send on a writable
    transport), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise AssertionError("uvicorn's send waited on a writable transport")


class _Probe(ReadTimeoutProtocol):
    """Records the cycles whose ASGI task would start instead of starting one."""

    started: list[RequestResponseCycle]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._prepare(cycle)
        self.started.append(cycle)


class _FastPath(FlagsFastPath):
    def respond(self, path: str, headers: Headers, write: Any) -> bool:
        if path != _ANSWERED.decode():
            return False
        write(200, [(b"content-length", b"%d" % len(_BODY))], _BODY)
        return True


class _App:
    def __init__(self) -> None:
        self.fast_path = _FastPath(None, Keyring(Settings()), cors=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the probe runs no ASGI task")


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "a write after the close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default


def _connect(loop: asyncio.AbstractEventLoop) -> tuple[_Probe, _Transport]:
    app = _App()
    config = Config(app, http="httptools", lifespan="off", log_config=None)
    protocol = _Probe(config, ServerState(), {}, _loop=loop, read_timeout=60.0)
    protocol.started = []
    protocol._flags = app.fast_path  # also where uvicorn's access log is on: it is not served
    protocol.logger = _QUIET  # the rejected request's warning is the probe's, not a client's
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _started(protocol: _Probe) -> RequestResponseCycle:
    assert protocol.started, "_start_asgi_task was not called for a request"
    return protocol.started[-1]


def _respond(cycle: RequestResponseCycle, headers: Headers, *, more: bool) -> None:
    run_now(cycle.send({"type": "http.response.start", "status": 200, "headers": headers}))
    run_now(cycle.send({"type": "http.response.body", "body": _BODY, "more_body": more}))
