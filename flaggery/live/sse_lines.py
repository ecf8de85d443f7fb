"""Reading a Server-Sent Events stream (the WHATWG event-stream format), line by line, within
bounds: a line longer than MAX_LINE_BYTES, or an event whose data is longer than
MAX_EVENT_BYTES, raises EventTooLarge instead of growing a buffer for as long as the server
sends (an edge and the remote client read their upstream this way; a flaggery server never
sends an event larger than MAX_EVENT_BYTES: it sends a reload instead)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_LINE_BYTES",
    "EventTooLarge",
    "SseEvent",
    "SseParser",
    "bounded_lines",
    "sse_events",
]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The most data one event may carry: a change of 10,000 subjects is about 1 MB."""
MAX_LINE_BYTES = MAX_EVENT_BYTES + 16  # a whole event's data on one line, with "data: "
_CR, _LF = 13, 10


class EventTooLarge(ValueError):
    """The stream sent a line or an event beyond the bounds: the stream is broken (or not a
    flaggery server's), and the reader reconnects rather than buffer it."""


@dataclass
class SseEvent:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)


class SseParser:
    """The event-stream format's line rules, for a reader that has the lines: `feed` each line
    (without its ending) and get the event a blank line completes. Comments, such as
    keep-alives, and events without data are skipped, as the format says. Raises
    EventTooLarge when an event's data passes MAX_EVENT_BYTES."""

    def __init__(self) -> None:
        self._current = SseEvent()
        self._size = 0

    def feed(self, line: str) -> SseEvent | None:
        """The event `line` completes, if any."""
        if not line:
            done, self._current, self._size = self._current, SseEvent(), 0
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
            self._size += len(value) + 1
            if self._size > MAX_EVENT_BYTES:
                raise EventTooLarge(f"An event's data passed {MAX_EVENT_BYTES} bytes.")
            self._current.data.append(value)
        return None


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """The events in ``lines`` (without line endings), by `SseParser`'s rules."""
    parser = SseParser()
    async for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event


async def bounded_lines(
    chunks: AsyncIterable[bytes], limit: int | None = None
) -> AsyncIterator[str]:
    """The lines of a UTF-8 byte stream (ended by CRLF, LF or CR, as the format allows),
    without their endings. Raises EventTooLarge once a line passes ``limit`` bytes (default
    MAX_LINE_BYTES), having held at most ``limit`` bytes of it."""
    limit = MAX_LINE_BYTES if limit is None else limit
    pending = bytearray()
    after_cr = False  # the last chunk ended in CR: a LF opening the next one belongs to it
    async for chunk in chunks:
        start = 1 if after_cr and chunk[:1] == b"\n" else 0
        after_cr = False
        while True:
            end = _line_end(chunk, start)
            if len(pending) + ((len(chunk) if end < 0 else end) - start) > limit:
                raise EventTooLarge(f"A line of the event stream passed {limit} bytes.")
            if end < 0:
                pending += chunk[start:]
                break
            pending += chunk[start:end]
            yield pending.decode("utf-8", "replace")
            pending.clear()
            if chunk[end] == _CR:
                if end + 1 == len(chunk):
                    after_cr = True
                elif chunk[end + 1] == _LF:
                    end += 1
            start = end + 1


def _line_end(chunk: bytes, start: int) -> int:
    """The index of the first CR or LF at or after ``start``, or -1."""
    cr, lf = chunk.find(b"\r", start), chunk.find(b"\n", start)
    if cr < 0 or (0 <= lf < cr):
        return lf
    return cr
