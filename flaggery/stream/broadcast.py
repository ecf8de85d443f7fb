"""In-process fan-out of stream events, with a short backlog for resuming clients.

One `Broadcast` per server process, fed by the process's own snapshot feed (Replica
listeners). Each client has a bounded queue: a client that falls QUEUE_EVENTS behind is
dropped (its stream ends; it resumes with Last-Event-ID), so a slow reader costs a bounded
amount of memory and never slows the feed or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator, Sequence

from flaggery.engine.model import Change
from flaggery.stream.events import StreamEvent, change_event, reload_event

__all__ = ["BACKLOG_EVENTS", "QUEUE_EVENTS", "Broadcast", "Subscription"]

QUEUE_EVENTS = 1000
"""Events a client may fall behind before it is dropped."""
BACKLOG_EVENTS = 1000
"""Recent events kept for resumes; older ones are replayed from the change log."""


class Subscription:
    """One client's queue. `next` returns the next event, or None once the client was
    dropped for falling behind."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue(QUEUE_EVENTS + 1)
        self.dropped = False

    def offer(self, event: StreamEvent) -> None:
        if self.dropped:
            return
        if self._queue.qsize() >= QUEUE_EVENTS:
            self.dropped = True
            self._queue.put_nowait(None)  # the one slot kept free for this
            return
        self._queue.put_nowait(event)

    async def next(self) -> StreamEvent | None:
        return await self._queue.get()


class Broadcast:
    """Publishes every snapshot swap to every subscription; `revision` is the latest one."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._backlog: deque[StreamEvent] = deque(maxlen=BACKLOG_EVENTS)
        self.revision = -1

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def on_swap(self, revision: int, changes: Sequence[Change] | None, reason: str | None) -> None:
        """A Replica listener: one event per change applied, or one reload event."""
        if changes is None:
            self._publish(reload_event(revision, reason or "full load"))
            return
        for change in changes:
            self._publish(change_event(change))

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def backlog_after(self, revision: int) -> list[StreamEvent] | None:
        """The kept events after ``revision``, oldest first, if they continue it (the first is
        ``revision + 1`` or a reload); None if the backlog no longer reaches back that far."""
        events = [event for event in self._backlog if event.revision > revision]
        if not events or events[0].revision == revision + 1 or events[0].kind == "reload":
            return events
        return None

    def _publish(self, event: StreamEvent) -> None:
        self.revision = event.revision
        self._backlog.append(event)
        for subscription in self._subscriptions:
            subscription.offer(event)
