"""Stream events: what a replica needs to follow a server's snapshot, one event per revision.

``change`` events carry one change-log entry, ``{"revision", "operation", "facts"}`` with the
facts of flaggery.engine.model, which a replica applies to its snapshot (Snapshot.apply).
``reload`` events, ``{"revision", "reason"}``, say that patching cannot continue (a gap, a write
too large to itemize, a rewritten history, a resume from beyond the retained log): fetch the
whole state again (GET /v1/snapshot). ``schedule`` events, ``{"revision", "reason"}``, say
that an A/B test started or ended on its schedule at that revision (no write, so no new
revision): the answers changed, the configuration did not (a replica with its own clock needs
nothing; a cache of answers drops them). ``freshness`` events, ``{"revision", "stale"}``, say
that the server's answers started or stopped possibly lagging their source (its database
unreachable, or its own upstream lost or ahead): a follower is no fresher than what it
follows. Clients ignore event types they do not know.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from flaggery.engine.model import Change, ReloadFact
from flaggery.live.sse_lines import MAX_EVENT_BYTES

__all__ = [
    "EventKind",
    "FreshnessData",
    "ReloadData",
    "StreamEvent",
    "change_event",
    "freshness_event",
    "reload_event",
    "schedule_event",
    "stream_event",
]

EventKind = Literal["change", "reload", "schedule", "freshness"]

_encoder = msgspec.json.Encoder()


class ReloadData(msgspec.Struct, frozen=True):
    revision: int
    reason: str


class FreshnessData(msgspec.Struct, frozen=True):
    revision: int
    stale: bool


class StreamEvent(msgspec.Struct, frozen=True):
    """One SSE event: ``id`` = revision, ``event`` = kind, ``data`` = JSON. ``wire`` is the
    whole event as sent (UTF-8, CRLF line ends, as sse-starlette writes its own lines), encoded
    once per revision and shared by every client's stream; it is the only copy kept (a bulk
    add's event is hundreds of KB), `data` reads it back."""

    revision: int
    kind: EventKind
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


def schedule_event(revision: int) -> StreamEvent:
    """The event for an A/B test starting or ending on its schedule at ``revision``."""
    reason = "an A/B test started or ended on its schedule"
    data = _encoder.encode(ReloadData(revision, reason)).decode()
    return stream_event(revision, "schedule", data)


def freshness_event(revision: int, stale: bool) -> StreamEvent:
    """The event for the server's answers starting (``stale``) or stopping to lag."""
    data = _encoder.encode(FreshnessData(revision, stale)).decode()
    return stream_event(revision, "freshness", data)


def stream_event(revision: int, kind: EventKind, data: str) -> StreamEvent:
    """The event with its wire bytes; `data` must be one line (compact JSON is)."""
    # Compact JSON escapes every line break, so the data is always one `data:` line.
    wire = f"id: {revision}\r\nevent: {kind}\r\ndata: {data}\r\n\r\n".encode()
    return StreamEvent(revision, kind, wire)
