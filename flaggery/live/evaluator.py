"""Evaluator: the live snapshot, for the HTTP server and for async applications that embed it.

    async with Evaluator.from_db_url(url) as ev:   # loads, then follows every change
        ev.variants(42)                            # sync, no I/O

Reads are plain method calls on the current immutable snapshot; a background feed swaps in a
new snapshot after every committed write, and a timer rebuilds the views when an A/B test
starts or ends, so a test goes live on time without any write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType

from sqlalchemy.engine import URL

from flaggery.engine import Snapshot, SubjectView
from flaggery.live.feed import ChangeFeed
from flaggery.live.polling_feed import PollingFeed
from flaggery.live.postgres_feed import PostgresFeed
from flaggery.live.replica import RefreshCounts, Replica
from flaggery.store.database import Clock, Database, utc_now
from flaggery.store.urls import libpq_dsn

__all__ = ["Evaluator"]

# With an injected clock the timer cannot know when "now" jumps, so it never sleeps longer
# than this before looking at the clock again.
MAX_TIMER_SLEEP_SECONDS = 1.0


class Evaluator:
    def __init__(
        self,
        db: Database,
        *,
        poll_interval: float = 0.25,
        check_interval: float = 15.0,
        owns_db: bool = False,
    ) -> None:
        self._db = db
        self._owns_db = owns_db
        self._replica = Replica(db, db.clock)
        self._feed: ChangeFeed
        if db.is_postgres:
            self._feed = PostgresFeed(libpq_dsn(db.url), self._replica, check_interval)
        else:
            self._feed = PollingFeed(db, self._replica, poll_interval)
        self._timer: asyncio.Task[None] | None = None

    @classmethod
    def from_db_url(cls, url: str | URL, *, clock: Clock = utc_now, **options: float) -> Evaluator:
        return cls(Database(url, clock=clock), owns_db=True, **options)

    async def start(self) -> None:
        await self._feed.start()
        self._timer = asyncio.create_task(self._follow_time(), name="flaggery-abtest-timer")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        await self._feed.stop()
        if self._owns_db:
            await self._db.dispose()

    async def __aenter__(self) -> Evaluator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot. Read it once per request and use that for the whole request."""
        return self._replica.snapshot

    def variants(self, subject_id: int) -> Mapping[str, str]:
        return self._replica.snapshot.variants(subject_id)

    def variant(self, subject_id: int, feature: str) -> str | None:
        return self._replica.snapshot.variant(subject_id, feature)

    def flags_json(self, subject_id: int) -> bytes:
        return self._replica.snapshot.flags_json(subject_id)

    def subject(self, subject_id: int) -> SubjectView:
        return self._replica.snapshot.subject(subject_id)

    @property
    def revision(self) -> int:
        return self._replica.revision

    @property
    def counts(self) -> RefreshCounts:
        return self._replica.counts

    async def wait_for_revision(self, revision: int, timeout: float | None = None) -> None:
        """Wait until the snapshot includes ``revision`` (read-your-writes)."""
        await asyncio.wait_for(self._replica.wait_for_revision(revision), timeout)

    async def refresh(self) -> bool:
        """Catch up now instead of waiting for the feed. False if the database failed."""
        return await self._replica.refresh()

    async def _follow_time(self) -> None:
        while True:
            boundary = self._replica.snapshot.next_boundary
            if boundary is None:
                delay = MAX_TIMER_SLEEP_SECONDS
            else:
                delay = (boundary - self._db.clock()).total_seconds()
            await asyncio.sleep(min(max(delay, 0.0), MAX_TIMER_SLEEP_SECONDS))
            self._replica.advance_time()
