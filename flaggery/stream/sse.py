"""Stream events as a Server-Sent Events response (sse-starlette), shared by GET /v1/stream
and the dashboard's GET /ui/stream.

Each event is ``id: <revision>``, ``event: <kind>``, ``data: <data>``, sent as the bytes it was
encoded to once (`StreamEvent.wire`). A comment (`OPENED`) comes first, at once, so a follower
knows the stream works before any event (a stream that ends without a line was never open:
a proxy that answers 200 and closes). Idle streams get a keep-alive comment every
``keepalive`` seconds; a client whose send stays blocked SEND_TIMEOUT_SECONDS is disconnected
by the process's `SendWatch` (a slow reader never holds the process's feed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from flaggery.stream.events import StreamEvent
from flaggery.stream.send_watch import SendWatch, WatchedEventSourceResponse

__all__ = ["OPENED", "event_source", "wire_bytes"]

OPENED = b": open\r\n\r\n"
"""The first line of every stream: a comment, which EventSource and followers skip."""


def event_source(
    events: AsyncIterator[StreamEvent], keepalive: float, watch: SendWatch
) -> WatchedEventSourceResponse:
    """The response that sends ``events`` until they end or the client leaves."""
    return WatchedEventSourceResponse(
        wire_bytes(events), watch=watch, ping=keepalive, headers={"Cache-Control": "no-store"}
    )


async def wire_bytes(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """Each event's wire form, for an EventSourceResponse."""
    # Bytes go out as they are (sse-starlette encodes only ServerSentEvent, str and dict):
    # each event was encoded once, when it was published, for every client.
    yield OPENED
    async for event in events:
        yield event.wire
