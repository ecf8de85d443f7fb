"""One client's stream: replay what it missed, then follow the broadcast, in revision order.

The subscription is taken before the replay is computed, so nothing published meanwhile is
lost; events the replay already covered are skipped by revision.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from flaggery.engine.model import Change
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.events import StreamEvent, change_event, reload_event

__all__ = ["Replay", "follow"]

Replay = Callable[[int, int], Awaitable[Sequence[Change] | None]]
"""replay(after, upto): the change-log entries after `after` up to `upto`, or None if they are
no longer all retained. None on a server without a database (an edge)."""


async def follow(
    broadcast: Broadcast, last_id: int | None, replay: Replay | None
) -> AsyncGenerator[StreamEvent]:
    """The events after ``last_id`` (None: from now on), then every new one. Ends when the
    client falls too far behind (flaggery.stream.broadcast.QUEUE_EVENTS)."""
    with broadcast.subscribe() as subscription:
        sent = broadcast.revision if last_id is None else last_id
        if last_id is not None:
            for missed in await _missed(broadcast, last_id, replay):
                yield missed
                sent = missed.revision
        while (event := await subscription.next()) is not None:
            # Published after the subscription: new, unless the replay already sent its change.
            if event.revision > sent or event.kind != "change":
                yield event
                sent = event.revision


async def _missed(
    broadcast: Broadcast, last_id: int, replay: Replay | None
) -> Sequence[StreamEvent]:
    current = broadcast.revision
    if last_id > current:
        # Ahead of this process: another history (a restored backup), or a sibling worker
        # that is further on. Only a reload is safe; the replica then catches up from here.
        return [reload_event(current, f"revision {last_id} is not in this server's history")]
    kept = broadcast.backlog_after(last_id)
    if kept is not None:
        return kept
    changes = None if replay is None else await replay(last_id, current)
    if changes is None:
        return [reload_event(current, f"the change log no longer holds revision {last_id + 1}")]
    return [change_event(change) for change in changes]
