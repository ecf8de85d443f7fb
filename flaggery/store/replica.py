"""A local replica of the resolution state: one current snapshot, swapped whole.

``refresh()`` reads the change log after the snapshot's revision and applies it; a gap it
cannot explain means a full reload. Any failure keeps the last good snapshot and is counted,
so a database outage degrades to stale answers, never to no answers.

Readiness reads three things here: ``connected`` (the last attempt to reach the database
worked), ``stale`` (answers may lag the database) and ``age_seconds`` (since the snapshot was
last confirmed current). A snapshot restored from a file is stale, aged as the file is, until
the first full load from the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from flaggery.clock import Clock
from flaggery.engine import ChangeGap, Snapshot, build_snapshot
from flaggery.engine.model import State
from flaggery.store.database import Database
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
    """time.monotonic() when the snapshot was last confirmed current: loaded, refreshed, or
    found up to date by a feed."""


class Replica:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        self._swapped = asyncio.Condition()
        self._connected = False
        self.counts = RefreshCounts()

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("The replica has not loaded a snapshot yet.")
        return self._snapshot

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    @property
    def connected(self) -> bool:
        """Whether the last attempt to reach the database succeeded."""
        return self._connected

    @property
    def stale(self) -> bool:
        """Whether answers may lag the database: it cannot be reached, or was not yet."""
        return not self._connected

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the snapshot was last confirmed current; None before the first."""
        last = self.counts.last_success
        return None if last is None else time.monotonic() - last

    def mark_current(self) -> None:
        """A feed saw that the database has not moved on from this snapshot."""
        self._connected = True
        self.counts.last_success = time.monotonic()

    def mark_disconnected(self) -> None:
        """A feed lost the database: answers are stale until the next successful load."""
        self._connected = False

    def count_failure(self) -> None:
        """An attempt to read the database failed."""
        self.counts.failed += 1
        self._connected = False

    async def restore(self, state: State, age_seconds: float) -> None:
        """Serve `state`, confirmed current `age_seconds` ago, until the database is back."""
        snapshot = build_snapshot(state, self._clock())
        async with self._lock:
            self._snapshot = snapshot
            self._connected = False
            self.counts.last_success = time.monotonic() - age_seconds
            await self._announce_swap()

    async def reload(self) -> None:
        """Load everything from scratch. Raises on failure (after counting it)."""
        async with self._lock:
            try:
                state = await load_state(self._db)
                snapshot = build_snapshot(state, self._clock())
            except Exception:
                self.count_failure()
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
                    self.mark_current()
                    return
                snapshot = current.apply(changes, self._clock())
            except ChangeGap:
                log.info("Change log gap after revision %s: full reload", current.revision)
            except Exception:
                self.count_failure()
                raise
            else:
                self.counts.incremental += 1
                await self._swap(snapshot)
                return
        await self.reload()

    async def _swap(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.mark_current()
        await self._announce_swap()

    async def _announce_swap(self) -> None:
        async with self._swapped:
            self._swapped.notify_all()
