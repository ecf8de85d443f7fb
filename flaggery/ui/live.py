"""GET /ui/stream: the dashboard's live updates, for the browser's EventSource.

The browser's EventSource sends the session cookie, not a bearer token, so the dashboard
relays this process's change stream itself, behind the same guard as its pages (any
signed-in token: reader or admin). It is the feed GET /v1/stream follows
(`flaggery.stream.follow` over the process's `Broadcast`), fanned out in process: no database
query per client. Each event is ``id: <revision>``, ``event: change|reload``,
``data: <revision>``: the page only learns *that* something changed, and fetches what it
shows (filtered) itself.

Where the stream starts: after the revision named by ``Last-Event-ID`` (an EventSource
reconnecting) or the ``after`` query parameter (the revision the page was rendered at), so
changes made between rendering and connecting are sent at once. A start beyond the
in-memory backlog is one reload event, never a replay from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.stream.events import StreamEvent, stream_event
from flaggery.stream.follow import follow
from flaggery.stream.sse import event_source
from flaggery.ui.render import Ui

__all__ = ["STREAM_PATH", "routes"]

STREAM_PATH = "/ui/stream"


def routes(ui: Ui) -> list[Route]:
    """The stream's route, relative to /ui."""

    async def stream(request: Request) -> Response:
        broadcast = ui.services(request).broadcast
        start = _revision(request.headers.get("last-event-id"))
        if start is None:
            start = _revision(request.query_params.get("after"))
        events = follow(broadcast, start, None)
        watch = ui.services(request).send_watch
        return event_source(_signals(events), ui.settings.stream_keepalive, watch)

    return [Route(STREAM_PATH.removeprefix("/ui"), stream, methods=["GET"])]


async def _signals(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The events without their facts: the revision is all a page needs to refresh."""
    async for event in events:
        yield stream_event(event.revision, event.kind, str(event.revision))


def _revision(text: str | None) -> int | None:
    """A revision from untrusted text; None for anything but digits (then: from now on)."""
    try:
        return parse_decimal((text or "").strip(), "revision")
    except DecimalTextError:
        return None
