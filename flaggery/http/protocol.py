"""The HTTP/1.1 protocol flaggery serves with: uvicorn's httptools protocol plus a read deadline.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not the time a
client takes to send one: a connection that sends a request line and headers but never the
blank line, a body that never completes, or nothing at all after connecting, stays open until
the client leaves. Each holds a socket and a file descriptor; enough of them (slowloris) and
the server cannot accept anyone else.

Here a request must arrive whole, headers and body, within ``read_timeout`` seconds of its
first byte (of the connection being made, for the first request). Otherwise the server
answers 408 ``RequestTimeout`` in the usual envelope, if no response has started, and closes
the connection; an application still waiting for the body sees the client disconnect.

Cost on the hot path: the deadline timer is armed only when a read ends in the middle of a
request, which a request arriving in one segment never does; the first request of a
connection pays one timer (armed on connect, cancelled when the request is complete).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flaggery.http.errors import RequestTimeout, error_body, status_for

__all__ = ["ReadTimeoutProtocol", "protocol_factory"]


class ReadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._reading = False  # between a request's first byte and its last
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a client that connects and sends nothing is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading and self._deadline is None and not self.transport.is_closing():
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True

    def on_message_complete(self) -> None:
        self._reading = False
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_timeout_response(self.read_timeout))
        self.transport.close()


def protocol_factory(read_timeout: float) -> Any:
    """What ``uvicorn.run(http=...)`` takes: the protocol class with its deadline bound.
    A partial of a module-level class, so it pickles to spawned worker processes."""
    return functools.partial(ReadTimeoutProtocol, read_timeout=read_timeout)


def _timeout_response(seconds: float) -> bytes:
    error = RequestTimeout(
        f"The request did not arrive whole (headers and body) within {seconds:g} s "
        "(FLAGGERY_READ_TIMEOUT); the connection is closed."
    )
    body = error_body(error)
    status = status_for(RequestTimeout)
    head = (
        f"HTTP/1.1 {status} Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
