"""Stream events as a Server-Sent Events response (sse-starlette), shared by GET /v1/stream
and the dashboard's GET /ui/stream.

Each event is ``id: <revision>``, ``event: <kind>``, ``data: <data>``. Idle streams get a
keep-alive comment every ``keepalive`` seconds; a client whose send blocks
SEND_TIMEOUT_SECONDS is disconnected (a slow reader never holds the process's feed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from flaggery.stream.events import StreamEvent

__all__ = ["SEND_TIMEOUT_SECONDS", "event_source"]

SEND_TIMEOUT_SECONDS = 10.0


def event_source(events: AsyncIterator[StreamEvent], keepalive: float) -> EventSourceResponse:
    """The response that sends ``events`` until they end or the client leaves."""
    return EventSourceResponse(
        _sse(events),
        ping=keepalive,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )


async def _sse(events: AsyncIterator[StreamEvent]) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        yield ServerSentEvent(data=event.data, event=event.kind, id=str(event.revision))
