"""The HTTP/1.1 protocol flaggery serves with: uvicorn's httptools protocol plus a read deadline
and the flags route answered without ASGI.

**Read deadline.** uvicorn bounds the idle time between requests (``timeout_keep_alive``) but
not the time a client takes to send one: a connection that sends a request line and headers
but never the blank line, a body that never completes, or nothing at all after connecting,
stays open until the client leaves. Each holds a socket and a file descriptor; enough of them
(slowloris) and the server cannot accept anyone else.

Here a request must arrive whole, headers and body, within ``read_timeout`` seconds of its
first byte (of the connection being made, for the first request). Otherwise the server
answers 408 ``RequestTimeout`` in the usual envelope, if no response has started, and closes
the connection; an application still waiting for the body sees the client disconnect.

Cost on the hot path: the deadline timer is armed only when a read ends in the middle of a
request, which a request arriving in one segment never does; the first request of a
connection pays one timer (armed on connect, cancelled when the request is complete).

**The flags route.** Through ASGI, a request costs uvicorn a scope, a request cycle with its
``asyncio.Event``, a task, and two ``send`` calls that check every header with regular
expressions: about four fifths of a flags request's CPU time (``bench/flags_path_bench.py
--profile``), against a sixth for flaggery's own work. So when the headers of a plain ``GET``
are complete, the protocol asks the app's `FlagsFastPath` for the answer and, if it gives
one (a 200 or 304 from the snapshot), writes the status line, uvicorn's default headers
(``date``, ``server``), the fast path's headers and the body itself, in one write, exactly
as the ASGI path would have sent them; ``GET /v1/keys/{key}/flags`` likewise, its path
percent-decoded as uvicorn decodes it. Everything else goes through ASGI as before: other
methods and routes, query strings and other percent-encoded paths, HEAD, every error, a request
pipelined behind one still in flight, and a connection whose client is not reading (the
ASGI path waits for the socket to drain; a direct write could not). Keep-alive follows
uvicorn's rule (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 closes).

**Bounds.** httptools keeps a request's line and headers in memory until they are complete,
with no limit of its own: a header that never ends grew one connection by 74 MB in 4 s. A
request whose line and headers pass MAX_HEAD_BYTES (64 KiB, checked per read: a read of up to
a socket buffer more may arrive first) is answered 431 and the connection closed. The read
deadline answers 408 only while no response to the request has been sent: a request answered
before its body arrived (the flags route ignores a GET's body) is closed without a second,
unrequested response.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from flaggery.errors import FlaggeryError
from flaggery.http.errors import (
    RequestHeadersTooLarge,
    RequestTimeout,
    error_body,
    status_for,
)
from flaggery.http.serving import KEY_PREFIX, FlagsFastPath, Headers

__all__ = ["ReadTimeoutProtocol", "protocol_factory"]

MAX_HEAD_BYTES = 64 * 1024
"""The longest request line and headers read, in bytes (nginx's default is 32 KiB)."""

# How many ASGI wrappers (uvicorn's proxy headers, message logger, ...) to look through for
# flaggery's app.
_WRAPPERS = 8


class ReadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._reading = False  # between a request's first byte and its last
        self._deadline: asyncio.TimerHandle | None = None
        # Access logs and a root path are ASGI's business (the log line, the path's prefix).
        direct = not self.access_log and not self.root_path
        self._flags = _flags_fast_path(self.app) if direct else None
        self._answered = False  # the current request was answered by `_answer_flags`
        self._keep_alive = True  # the current request's, for `_write_answer`
        self._in_head = True  # reading a request line and headers (or waiting for one)
        self._head_bytes = 0  # read since the current request began, while in its head
        # The cycle whose ASGI task runs: uvicorn's `self.cycle` is the newest one, which is a
        # pipelined request queued behind it when there is one.
        self._running: RequestResponseCycle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a client that connects and sends nothing is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        running = self._running
        if running is not None and not running.response_complete:
            # uvicorn marks only `self.cycle` disconnected: a response waiting for the socket
            # to drain behind it would then write to a closed transport (an error per client
            # that pipelines without reading and hangs up).
            running.disconnected = True
            running.message_event.set()
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

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_message_begin(self) -> None:
        # A request pipelined behind a directly answered one: its keep-alive timer must not
        # cut this one off while the app works on it.
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._reading = True
        self._answered = False
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._answer_flags():
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading = False
        self._in_head = True
        self._disarm()
        if not self._answered:
            super().on_message_complete()

    def _answer_flags(self) -> bool:
        """Answer a plain GET of the flags route from the snapshot, or return False."""
        flags, parser, cycle = self._flags, self.parser, self.cycle
        if (
            flags is None
            or parser.get_method() != b"GET"
            or (cycle is not None and not cycle.response_complete)  # pipelined behind it
            or self.flow.write_paused
            or parser.should_upgrade()
        ):
            return False
        url = self.url
        if b"?" in url or b"#" in url or not url.isascii():
            return False  # uvicorn's URL parsing decides what the path is
        path = url.decode("ascii")
        if "%" in path:
            if not path.startswith(KEY_PREFIX):
                return False
            path = unquote(path)  # as uvicorn decodes it: a percent-encoded targeting key
        self._keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        if not flags.respond(path, self.headers, self._write_answer):
            return False
        self._answered = True
        self.server_state.total_requests += 1
        if not self._keep_alive:
            self.transport.close()
        elif not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        return True

    def _write_answer(self, status: int, headers: Headers, body: bytes) -> None:
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not self._keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))

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
        """Whether the request being read already has (the start of) its response."""
        if self._in_head:
            return False  # its headers are not complete: nothing can have answered it
        cycle = self.cycle
        return self._answered or (cycle is not None and cycle.response_started)

    def _refuse(self, error: FlaggeryError) -> None:
        """Answer `error` in the usual envelope and close the connection."""
        body = error_body(error)
        status = status_for(type(error))
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
        parts += (b"connection: close\r\n\r\n", body)
        self.transport.write(b"".join(parts))
        self.transport.close()


def protocol_factory(read_timeout: float) -> Any:
    """What ``uvicorn.run(http=...)`` takes: the protocol class with its deadline bound.
    A partial of a module-level class, so it pickles to spawned worker processes."""
    return functools.partial(ReadTimeoutProtocol, read_timeout=read_timeout)


def _flags_fast_path(app: Any) -> FlagsFastPath | None:
    """flaggery's flags fast path, if `app` is flaggery's app or wraps it (uvicorn wraps the
    app in its middleware: ``.app`` is the wrapped one); None for any other app."""
    for _ in range(_WRAPPERS):
        fast_path = getattr(app, "fast_path", None)
        if isinstance(fast_path, FlagsFastPath):
            return fast_path
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
