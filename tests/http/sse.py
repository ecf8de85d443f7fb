"""Reading Server-Sent Events from a real server in tests, with the parser edges and the
remote client use (flaggery.live.sse_lines)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from flaggery.live.sse_lines import SseEvent, SseParser

Event = SseEvent


def events(response: httpx.Response) -> Iterator[Event]:
    """The events of a streamed response, comments (keep-alives) skipped."""
    parser = SseParser()
    for line in response.iter_lines():
        event = parser.feed(line)
        if event is not None:
            yield event
