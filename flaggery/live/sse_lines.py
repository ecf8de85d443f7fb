"""Reading a Server-Sent Events stream (the WHATWG event-stream format), line by line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

__all__ = ["SseEvent", "SseParser", "sse_events"]


@dataclass
class SseEvent:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)


class SseParser:
    """The event-stream format's line rules, for a reader that has the lines: `feed` each line
    (without its ending) and get the event a blank line completes. Comments, such as
    keep-alives, and events without data are skipped, as the format says."""

    def __init__(self) -> None:
        self._current = SseEvent()

    def feed(self, line: str) -> SseEvent | None:
        """The event `line` completes, if any."""
        if not line:
            done, self._current = self._current, SseEvent()
            return done if done.data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._current.id = value
        elif name == "event":
            self._current.event = value
        elif name == "data":
            self._current.data.append(value)
        return None


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """The events in ``lines`` (without line endings), by `SseParser`'s rules."""
    parser = SseParser()
    async for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event
