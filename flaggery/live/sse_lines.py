"""Reading a Server-Sent Events stream (the WHATWG event-stream format), line by line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

__all__ = ["SseEvent", "sse_events"]


@dataclass
class SseEvent:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """The events in ``lines`` (without line endings); comments, such as keep-alives, and
    events without data are skipped, as the format says."""
    current = SseEvent()
    async for line in lines:
        if not line:
            if current.data:
                yield current
            current = SseEvent()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data.append(value)
