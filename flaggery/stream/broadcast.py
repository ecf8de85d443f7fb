"""In-process fan-out of stream events, with a short backlog for resuming clients.

One `Broadcast` per server process, fed by the process's own snapshot feed (`on_update`, an
Evaluator subscriber). Publishing an event costs the same for 1 client as for 2,000: it is
appended once to the shared backlog and one wake-up is set; each client reads the backlog from
its own position (a cursor, not a queue of its own). A client that falls more than QUEUE_EVENTS
behind is dropped after reading QUEUE_EVENTS more (its stream ends; it resumes with
Last-Event-ID), so a slow reader costs a bounded amount of memory and never slows the feed or
the other clients.

The backlog is bounded in bytes as well as in events: BACKLOG_EVENTS events or BACKLOG_BYTES
of their wire form, whichever is less (the newest event always stays). 100 bulk adds of 9,000
subjects are about 60 MB of events: kept whole, every replica, worker and edge held them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator, Sequence

from flaggery.engine import Snapshot
from flaggery.engine.model import Change
from flaggery.store.subscribers import Update
from flaggery.stream.events import (
    StreamEvent,
    change_event,
    freshness_event,
    reload_event,
    schedule_event,
)

__all__ = ["BACKLOG_BYTES", "BACKLOG_EVENTS", "QUEUE_EVENTS", "Broadcast", "Subscription"]

QUEUE_EVENTS = 1000
"""Events a client may fall behind before it is dropped."""
BACKLOG_EVENTS = 1000
"""Recent events kept for resumes; older ones are replayed from the change log. Clients read
new events from this backlog too: one that falls out of it is dropped."""
BACKLOG_BYTES = 8 * 1024 * 1024
"""... and at most this many bytes of them (their wire form, the only copy kept)."""


class Subscription:
    """One client's position in a Broadcast. `next` returns the next event published after
    the subscription was taken, or None once the client was dropped for falling behind."""

    __slots__ = ("_broadcast", "_next", "_stop")

    @property
    def unread(self) -> int:
        """Events published and not read yet: `next` returns at once when there are any."""
        return self._broadcast.published - self._next

    def __init__(self, broadcast: Broadcast) -> None:
        self._broadcast = broadcast
        self._next = broadcast.published  # the sequence number of the next event to read
        self._stop: int | None = None

    async def next(self) -> StreamEvent | None:
        broadcast = self._broadcast
        while self._next == broadcast.published:
            await broadcast.wait()
        unread = broadcast.published - self._next
        if self._stop is None and unread > QUEUE_EVENTS:
            self._stop = self._next + QUEUE_EVENTS
        if self._next == self._stop or unread > len(broadcast.backlog):
            return None
        event = broadcast.backlog[-unread]
        self._next += 1
        return event


class Broadcast:
    """Publishes every snapshot swap to every subscription; `revision` is the latest one."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.backlog: deque[StreamEvent] = deque()
        """The latest events, oldest first (read-only outside this class)."""
        self.backlog_bytes = 0
        """The size of the backlog's events on the wire."""
        self.published = 0
        """How many events were published so far."""
        self._published_event = asyncio.Event()
        self.revision = -1
        self._snapshot: Snapshot | None = None
        self.stale = False
        """Whether the process's answers may lag their source (the latest update's)."""

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def on_update(self, update: Update) -> None:
        """An Evaluator subscriber (`Evaluator.subscribe`): `on_swap` of each update; an
        update without change-log entries publishes a schedule event if it swapped the
        snapshot (an A/B test started or ended). Staleness moving publishes a freshness
        event, after the update's other events."""
        previous, self._snapshot = self._snapshot, update.snapshot
        if update.changes is not None and not update.changes:
            if previous is not None and update.snapshot is not previous:
                self._publish(schedule_event(update.revision))
        else:
            self.on_swap(update.revision, update.changes, update.reason)
        if update.stale != self.stale:
            self.stale = update.stale
            self._publish(freshness_event(update.revision, update.stale))

    def on_swap(self, revision: int, changes: Sequence[Change] | None, reason: str | None) -> None:
        """One event per change applied, or one reload event when ``changes`` is None."""
        if changes is None:
            self._publish(reload_event(revision, reason or "full load"))
            return
        for change in changes:
            self._publish(change_event(change))

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription to the events published from now on, for the block's duration."""
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def wait(self) -> None:
        """Until the next event is published."""
        await self._published_event.wait()

    def backlog_after(self, revision: int) -> list[StreamEvent] | None:
        """The kept events after ``revision``, oldest first, if they continue it (the first is
        ``revision + 1`` or a reload); None if the backlog no longer reaches back that far.
        Only change and reload events are kept for this: the others signal a moment, and one
        is no proof that the change of its revision is still kept."""
        events = [
            event
            for event in self.backlog
            if event.revision > revision and event.kind in ("change", "reload")
        ]
        if not events or events[0].revision == revision + 1 or events[0].kind == "reload":
            return events
        return None

    def _publish(self, event: StreamEvent) -> None:
        self.revision = event.revision
        backlog = self.backlog
        backlog.append(event)
        self.backlog_bytes += len(event.wire)
        while len(backlog) > 1 and (
            len(backlog) > BACKLOG_EVENTS or self.backlog_bytes > BACKLOG_BYTES
        ):
            self.backlog_bytes -= len(backlog.popleft().wire)
        self.published += 1
        # One wake-up for every waiting client; those that wake read the backlog themselves.
        woken, self._published_event = self._published_event, asyncio.Event()
        woken.set()
