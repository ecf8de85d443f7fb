"""Disconnecting stream clients whose sends stopped draining, with one timer per process.

sse-starlette's ``send_timeout`` wraps every send in its own cancel scope and timer, about a
sixth of an event's CPU time per connection (14.5 against 12.2 µs with this watch, 1,000
streams, bench/stream_cpu_bench.py). Here a send only notes when it started and finished, and one
`SendWatch.run` task per process looks every ``period`` seconds for sends that have been
blocked longer than ``timeout`` (a client that stopped reading fills its socket buffers, and
then uvicorn's send waits for it to drain) and cancels those streams. A blocked client is
therefore disconnected between ``timeout`` and ``timeout + period`` seconds after its send
blocked, as sse-starlette's own timeout would (SendTimeoutError, then uvicorn closes the
connection).

The watch also bounds how many streams the process serves at once (``limit``: every stream,
GET /v1/stream, /ui/stream and /ofrep/v1/events alike): each holds a socket, a file descriptor
and ~46 KiB, and a process out of descriptors can answer nobody (nor open its SQLite file).
A stream beyond the limit is refused before it starts, TooManyStreams (503, Retry-After).
The default, `default_stream_limit`, keeps half the process's descriptors for serving.
sse-starlette internals used (pinned to the minor version tested in ``pyproject.toml``;
tests/stream/test_send_watch.py checks each, and .ci/run runs it against the newest release):
``EventSourceResponse.__call__(scope, receive, send)`` sends every message through the `send`
it is given; its ``raw_headers`` include the ``connection`` header it sets; the type alias
``sse_starlette.sse.ContentStream`` and the exception ``sse_starlette.sse.SendTimeoutError``; at
server shutdown it stops a stream without ending the response.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import ContentStream, SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from flaggery.errors import TooManyStreams

__all__ = [
    "RETRY_AFTER_SECONDS",
    "SEND_TIMEOUT_SECONDS",
    "SendWatch",
    "WatchedEventSourceResponse",
    "default_stream_limit",
]

SEND_TIMEOUT_SECONDS = 10.0
"""How long a stream's send may stay blocked before the client is disconnected."""
_END_SECONDS = 1.0  # ending a stream at shutdown must not wait on a client that stopped reading
RETRY_AFTER_SECONDS = 5
"""Retry-After of a stream refused for the limit: other workers or replicas may have room."""
MAX_DEFAULT_STREAMS = 100_000


def default_stream_limit() -> int:
    """Half the process's soft file-descriptor limit (RLIMIT_NOFILE), at most
    MAX_DEFAULT_STREAMS: 512 streams under the common 1,024, the other half kept for serving
    connections, the database and files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_STREAMS
    return max(1, min(soft // 2, MAX_DEFAULT_STREAMS))


class _Stream:
    __slots__ = ("cancel", "sending_since")

    def __init__(self, cancel: anyio.CancelScope) -> None:
        self.cancel = cancel
        self.sending_since = 0.0
        """time.monotonic() when the current send began; 0.0 between sends."""


class SendWatch:
    """The streams of one process and their sends in progress."""

    def __init__(
        self,
        timeout: float = SEND_TIMEOUT_SECONDS,
        period: float = 1.0,
        limit: int | None = None,
    ) -> None:
        """``timeout`` and ``period`` in seconds, ``limit`` streams at once (None:
        `default_stream_limit`); see the module."""
        self.timeout = timeout
        self.period = period
        self.limit = default_stream_limit() if limit is None else limit
        self._streams: set[_Stream] = set()

    @property
    def streams(self) -> int:
        return len(self._streams)

    async def run(self) -> None:
        """Cancel the streams blocked too long, every ``period`` seconds, for ever."""
        while True:
            await asyncio.sleep(self.period)
            self.check()

    def check(self) -> None:
        """Cancel the streams whose current send began more than ``timeout`` seconds ago."""
        deadline = time.monotonic() - self.timeout
        for stream in self._streams:
            if 0.0 < stream.sending_since < deadline:
                stream.cancel.cancel()

    def add(self, stream: _Stream) -> None:
        """Watch ``stream``; raises TooManyStreams if the process serves `limit` already."""
        if len(self._streams) >= self.limit:
            raise TooManyStreams(
                f"This server process serves {self.limit} event streams already "
                "(FLAGGERY_MAX_STREAMS); retry in a few seconds, or on another replica.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._streams.add(stream)

    def discard(self, stream: _Stream) -> None:
        self._streams.discard(stream)


class WatchedEventSourceResponse(EventSourceResponse):
    """An EventSourceResponse whose blocked sends a `SendWatch` ends, instead of a timer
    per send; takes every EventSourceResponse option but ``send_timeout``. Raises
    TooManyStreams before sending anything when the watch's limit is reached, and
    SendTimeoutError when it was ended for a blocked send."""

    def __init__(self, content: ContentStream, *, watch: SendWatch, **options: Any) -> None:
        super().__init__(content, **options)
        self._watch = watch
        # sse-starlette sets "Connection: keep-alive", a hop-by-hop header that is the server's
        # to choose: a client asking for "Connection: close" got both.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"connection"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = ended = False
        with anyio.CancelScope() as cancel:
            stream = _Stream(cancel)

            async def watched(message: Message) -> None:
                nonlocal started, ended
                stream.sending_since = time.monotonic()
                await send(message)
                stream.sending_since = 0.0
                started = True
                ended = message["type"] == "http.response.body" and not message.get("more_body")

            self._watch.add(stream)
            try:
                await super().__call__(scope, receive, watched)
            finally:
                self._watch.discard(stream)
        if cancel.cancelled_caught:
            raise SendTimeoutError()
        if started and not ended:
            # At server shutdown sse-starlette stops the stream without ending the response;
            # uvicorn then logs an error and the client sees a body cut off mid-stream. End it:
            # the client sees a clean end of stream and reconnects elsewhere.
            with anyio.move_on_after(_END_SECONDS):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
