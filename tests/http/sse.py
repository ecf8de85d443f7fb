"""Reading Server-Sent Events from a real server in tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx


@dataclass
class Event:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)


def events(response: httpx.Response) -> Iterator[Event]:
    """The events of a streamed response, comments (keep-alives) skipped."""
    current = Event()
    for line in response.iter_lines():
        if not line:
            if current.data:
                yield current
            current = Event()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            elif name == "data":
                current.data.append(value)
