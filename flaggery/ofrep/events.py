"""OFREP's event stream: ``refetchEvaluation`` over Server-Sent Events (OFREP ADR-0008), a
mapping over the process's one change stream.

Every event of the process's `flaggery.stream.broadcast.Broadcast` (a write anywhere, a reload,
an A/B test starting or ending on its schedule) becomes one ``refetchEvaluation`` event; events
already waiting when a client reads are coalesced into one (a bulk write is one refetch, not
one per revision). The fan-out, its bounds and its watchdog are the change stream's: a cursor
per client over the shared backlog (a client that falls QUEUE_EVENTS behind is dropped; its
EventSource reconnects and refetches), the process's one `SendWatch` (a client whose send stays
blocked is disconnected; it also bounds how many streams of every kind the process serves:
beyond it, 503 with Retry-After), and keep-alive pings every PING_SECONDS.

The stream carries no flag data, only that the configuration moved on (``etag`` is the
revision, ``lastModified`` Unix seconds), so clients refetch the bulk evaluation and get a 304
if their own flags did not change. It is open even when client tokens are required, because a
browser's EventSource cannot send an Authorization header and nothing in it is secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import msgspec
from starlette.types import Receive, Scope, Send

from flaggery.errors import TooManyStreams
from flaggery.stream.broadcast import Broadcast, Subscription
from flaggery.stream.events import StreamEvent
from flaggery.stream.send_watch import SendWatch, WatchedEventSourceResponse

__all__ = ["PING_SECONDS", "OfrepEvents"]

PING_SECONDS = 15


class _Refetch(msgspec.Struct, frozen=True):
    etag: str
    lastModified: int
    type: str = "refetchEvaluation"


_encoder = msgspec.json.Encoder()


class OfrepEvents:
    """Serves the event stream from a broadcast; `attach` is called by the app's lifespan."""

    def __init__(self) -> None:
        self._broadcast: Broadcast | None = None
        self._send_watch: SendWatch | None = None
        self._last: tuple[StreamEvent, bytes] | None = None

    def attach(self, broadcast: Broadcast, send_watch: SendWatch) -> None:
        """Map ``broadcast``'s events; disconnect blocked clients with ``send_watch``."""
        self._broadcast, self._send_watch = broadcast, send_watch

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream events to one client until it disconnects, is dropped, or the server stops.
        Raises TooManyStreams (nothing sent) when the process serves as many as it may."""
        broadcast, watch = self._broadcast, self._send_watch
        if broadcast is None or watch is None:
            raise TooManyStreams("The server is not started yet.", retry_after=1)
        response = WatchedEventSourceResponse(
            self._refetches(broadcast),
            watch=watch,
            ping=PING_SECONDS,
            headers={"Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    async def _refetches(self, broadcast: Broadcast) -> AsyncGenerator[bytes]:
        with broadcast.subscribe() as subscription:
            while (event := await _latest(subscription)) is not None:
                yield self._wire(event)

    def _wire(self, event: StreamEvent) -> bytes:
        """The refetch event for ``event``, encoded once for every client."""
        if self._last is None or self._last[0] is not event:
            data = _encoder.encode(_Refetch(str(event.revision), int(time.time()))).decode()
            wire = f"id: {event.revision}\r\nevent: message\r\ndata: {data}\r\n\r\n".encode()
            self._last = (event, wire)
        return self._last[1]


async def _latest(subscription: Subscription) -> StreamEvent | None:
    """The next event, or the latest of those already waiting; None once dropped."""
    event = await subscription.next()
    while event is not None and subscription.unread:
        later = await subscription.next()  # returns at once: it is already published
        if later is None:
            break
        event = later
    return event
