"""A local replica of the resolution state: one current snapshot, swapped whole.

``refresh()`` reads the change log after the snapshot's revision and applies it; a gap it
cannot explain means a full reload. Any failure keeps the last good snapshot and is counted,
so a database outage degrades to stale answers, never to no answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from flaggery.engine import ChangeGap, Snapshot, build_snapshot
from flaggery.store.database import Clock, Database
from flaggery.store.loader import load_changes, load_state

__all__ = ["RefreshCounts", "Replica"]

log = logging.getLogger("flaggery.live")


@dataclass
class RefreshCounts:
    """What the replica has done, for metrics and readiness."""

    incremental: int = 0
    full: int = 0
    failed: int = 0
    reconnects: int = 0
    last_success: float | None = None
    """time.monotonic() of the last successful load or refresh."""


class Replica:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        self._swapped = asyncio.Condition()
        self.counts = RefreshCounts()

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("The replica has not loaded a snapshot yet.")
        return self._snapshot

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    async def reload(self) -> None:
        """Load everything from scratch. Raises on failure (after counting it)."""
        async with self._lock:
            try:
                state = await load_state(self._db)
                snapshot = build_snapshot(state, self._clock())
            except Exception:
                self.counts.failed += 1
                raise
            self.counts.full += 1
            await self._swap(snapshot)

    async def refresh(self) -> bool:
        """Catch up with the database. On failure, keep the last good snapshot and return False."""
        try:
            await self._refresh()
        except Exception:
            log.warning(
                "Snapshot refresh failed; serving revision %s", self.revision, exc_info=True
            )
            return False
        return True

    async def catch_up(self, revision: int) -> Snapshot:
        """The snapshot as of ``revision`` or later (read-your-writes). Raises on failure."""
        if self._snapshot is None:
            await self.reload()
        if self.snapshot.revision < revision:
            await self._refresh()
        self.advance_time()
        return self.snapshot

    def advance_time(self) -> None:
        """Rebuild the views for the current time if an A/B test has started or ended."""
        if self._snapshot is not None:
            self._snapshot = self._snapshot.at(self._clock())

    @property
    def revision(self) -> int:
        return -1 if self._snapshot is None else self._snapshot.revision

    async def wait_for_revision(self, revision: int) -> None:
        async with self._swapped:
            await self._swapped.wait_for(lambda: self.revision >= revision)

    async def _refresh(self) -> None:
        if self._snapshot is None:
            await self.reload()
            return
        async with self._lock:
            current = self.snapshot
            try:
                changes = await load_changes(self._db, current.revision)
                if not changes:
                    self.counts.last_success = time.monotonic()  # confirmed current
                    return
                snapshot = current.apply(changes, self._clock())
            except ChangeGap:
                log.info("Change log gap after revision %s: full reload", current.revision)
            except Exception:
                self.counts.failed += 1
                raise
            else:
                self.counts.incremental += 1
                await self._swap(snapshot)
                return
        await self.reload()

    async def _swap(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.counts.last_success = time.monotonic()
        async with self._swapped:
            self._swapped.notify_all()
