"""The polling feed, for SQLite: compare the database head (identity, revision, latest change
id) with the replica's every ``interval`` seconds."""

from __future__ import annotations

import asyncio
import logging

from flaggery.live.failure_log import FailureLog
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.database import Database
from flaggery.store.replica import Replica

__all__ = ["PollingFeed"]

log = logging.getLogger(__name__)


class PollingFeed:
    def __init__(self, db: Database, replica: Replica, interval: float = 0.25) -> None:
        self._db = db
        self._replica = replica
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failures = FailureLog(log)

    async def start(self) -> None:
        await self._replica.reload()
        self._task = asyncio.create_task(self._poll(), name="flaggery-polling-feed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                head = await self._db.head()
            except Exception as error:
                self._replica.count_failure()
                # Every 0.25 s through an outage: logged once per reason, not per attempt.
                reason = f"{type(error).__name__}: {error}"
                self._failures.failed(reason, "Revision check failed: %s", reason)
                continue
            self._failures.recovered("Revision check works again")
            if head == self._replica.head:
                self._replica.mark_current()
            else:
                await self._replica.refresh()
