"""Stream events: what a replica needs to follow a server's snapshot, one event per revision.

``change`` events carry one change-log entry, ``{"revision", "operation", "facts"}`` with the
facts of flaggery.engine.model, which a replica applies to its snapshot (Snapshot.apply).
``reload`` events, ``{"revision", "reason"}``, say that patching cannot continue (a gap, a write
too large to itemize, a rewritten history, a resume from beyond the retained log): fetch the
whole state again (GET /v1/snapshot).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from flaggery.engine.model import Change, ReloadFact
from flaggery.live.sse_lines import MAX_EVENT_BYTES

__all__ = ["ReloadData", "StreamEvent", "change_event", "reload_event", "stream_event"]

_encoder = msgspec.json.Encoder()


class ReloadData(msgspec.Struct, frozen=True):
    revision: int
    reason: str


class StreamEvent(msgspec.Struct, frozen=True):
    """One SSE event: ``id`` = revision, ``event`` = kind, ``data`` = JSON. ``wire`` is the
    whole event as sent (UTF-8, CRLF line ends, as sse-starlette writes its own lines), encoded
    once per revision and shared by every client's stream; it is the only copy kept (a bulk
    add's event is hundreds of KB), `data` reads it back."""

    revision: int
    kind: Literal["change", "reload"]
    wire: bytes

    @property
    def data(self) -> str:
        """The ``data:`` line's text (for tests and logs: decodes `wire` each time)."""
        return self.wire.decode().split("\r\n")[2].removeprefix("data: ")


def change_event(change: Change) -> StreamEvent:
    """The event for one change-log entry; a reload event for a write logged as a reload, or
    one whose data would pass MAX_EVENT_BYTES (followers refuse larger events)."""
    if any(isinstance(fact, ReloadFact) for fact in change.facts):
        return reload_event(change.revision, f"revision {change.revision} is too large to patch")
    data = _encoder.encode(change)
    if len(data) > MAX_EVENT_BYTES:  # more than a follower reads in one event
        return reload_event(change.revision, f"revision {change.revision} is too large to send")
    return stream_event(change.revision, "change", data.decode())


def reload_event(revision: int, reason: str) -> StreamEvent:
    return stream_event(revision, "reload", _encoder.encode(ReloadData(revision, reason)).decode())


def stream_event(revision: int, kind: Literal["change", "reload"], data: str) -> StreamEvent:
    """The event with its wire bytes; `data` must be one line (compact JSON is)."""
    # Compact JSON escapes every line break, so the data is always one `data:` line.
    wire = f"id: {revision}\r\nevent: {kind}\r\ndata: {data}\r\n\r\n".encode()
    return StreamEvent(revision, kind, wire)
