"""uvicorn's httptools protocol with a read deadline and a bound on the request head: the part
of flaggery's protocol that leans on nothing private, kept when uvicorn's internals fail the
start-up check (`flaggery.http.protocol_guard`).

**Read deadline.** uvicorn bounds the idle time between requests (``timeout_keep_alive``) but
not the time a client takes to send one: a connection that sends a request line and headers
but never the blank line, a body that never completes, or nothing at all after connecting,
stays open until the client leaves. Each holds a socket and a file descriptor; enough of them
(slowloris) and the server cannot accept anyone else.

Here a request must arrive whole, headers and body, within ``read_timeout`` seconds of its
first byte (of the connection being made, for the first request). Otherwise the server
answers 408 ``RequestTimeout`` in the usual envelope, if no response can have started, and
closes the connection; an application still waiting for the body sees the client disconnect.

Cost on the hot path: the deadline timer is armed only when a read ends in the middle of a
request, which a request arriving in one segment never does; the first request of a
connection pays one timer (armed on connect, cancelled when the request is complete).

**Bounds.** httptools keeps a request's line and headers in memory until they are complete,
with no limit of its own: a header that never ends grew one connection by 74 MB in 4 s. A
request whose line and headers pass MAX_HEAD_BYTES (64 KiB, checked per read: a read of up to
a socket buffer more may arrive first) is answered 431 and the connection closed.

What it uses of uvicorn and httptools: the class ``HttpToolsProtocol``, its constructor's
signature, the asyncio protocol methods it implements (``connection_made``,
``connection_lost``, ``data_received``), the httptools parser callbacks ``on_message_begin``,
``on_headers_complete`` and ``on_message_complete`` (httptools' documented interface), and its
``transport`` and ``loop`` attributes.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flaggery.errors import FlaggeryError
from flaggery.http.errors import RequestHeadersTooLarge, RequestTimeout, error_body, status_for

__all__ = ["MAX_HEAD_BYTES", "DeadlineProtocol"]

MAX_HEAD_BYTES = 64 * 1024
"""The longest request line and headers read, in bytes (nginx's default is 32 KiB)."""


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the read deadline and the head bound."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._reading = False  # between a request's first byte and its last
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request line and headers (or waiting for one)
        self._head_bytes = 0  # read since the current request began, while in its head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a client that connects and sends nothing is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)  # reset when a request begins, so before the feed
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(RequestHeadersTooLarge(
                f"The request line and headers may have at most {MAX_HEAD_BYTES} bytes; "
                "the connection is closed."
            ))  # fmt: skip
            return
        if self._reading and self._deadline is None:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._request_read()
        super().on_message_complete()

    def _request_read(self) -> None:
        """The current request arrived whole: its deadline ends."""
        self._reading = False
        self._in_head = True
        self._disarm()

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
        if not self._responded():
            self._refuse(RequestTimeout(
                f"The request did not arrive whole (headers and body) within "
                f"{self.read_timeout:g} s (FLAGGERY_READ_TIMEOUT); the connection is closed."
            ))  # fmt: skip
        else:
            self.transport.close()

    def _responded(self) -> bool:
        """Whether the request being read may already have (the start of) its response: here,
        once its headers are complete (an application may have answered); a subclass that
        knows more says so."""
        return not self._in_head

    def _refuse(self, error: FlaggeryError) -> None:
        """Answer `error` in the usual envelope and close the connection."""
        body = error_body(error)
        status = status_for(type(error))
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())]
        for name, value in self._default_headers():
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
        parts += (b"connection: close\r\n\r\n", body)
        self.transport.write(b"".join(parts))
        self.transport.close()

    def _default_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers every response carries (uvicorn's ``date`` and ``server`` are its
        internals: the subclass adds them)."""
        return []
