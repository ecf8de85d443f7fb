"""A local replica of the resolution state: one current snapshot, swapped whole.

``refresh()`` reads the database's head (identity, revision, latest change id) and, if it
moved on, the change log after the snapshot's revision, and applies it. A gap, a log that no
longer continues the applied history (pruned, or a restored backup), another database behind
the URL, or a revision that went back all mean a full reload. Any failure keeps the last good
snapshot and is counted, so a database outage degrades to stale answers, never to no answers.

A state that cannot be built into a snapshot (a bad record) is the same: the last good snapshot
stays, ``build_error`` says which revision failed and which records are at fault, the log says
it once per failure, and the replica is stale until a later revision builds.

Readiness reads four things here: ``connected`` (the last attempt to reach the database
worked), ``build_error``, ``stale`` (answers may lag the database) and ``age_seconds`` (since
the snapshot was last confirmed current). A replica fed by an upstream server also knows the
newest revision the upstream announced (`saw_source_revision`): below it, it is ``behind``,
so stale, and its age is not renewed; the same while the upstream says it is stale itself
(`saw_source_staleness`): a follower is no fresher than what it follows. A snapshot restored
from a file is stale, aged as the file is, until the first full load from the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from flaggery.clock import Clock
from flaggery.engine import ChangeGap, Snapshot, build_snapshot
from flaggery.engine.diagnosis import faulty_records
from flaggery.engine.model import Change, State
from flaggery.engine.steps import Steps
from flaggery.store.head import Head, rewritten
from flaggery.store.log_tail import Tail
from flaggery.store.subscribers import Subscribers, Update

if TYPE_CHECKING:
    from flaggery.store.database import Database

__all__ = ["RefreshCounts", "Replica", "SnapshotBuildFailed", "TailReader", "in_steps"]

log = logging.getLogger(__name__)

T = TypeVar("T")
TailReader: TypeAlias = Callable[[Head], Awaitable[Tail]]
"""Reads the change log after a head (flaggery.store.log_tail)."""


class SnapshotBuildFailed(Exception):
    """The database's state cannot be built into a snapshot; the message names the records."""


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
    def __init__(self, db: Database | None, clock: Clock) -> None:
        """A replica of ``db``; None for one fed by another server (`install`, `patch`)."""
        self._db = db
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self.swap_hooks: list[Callable[[Snapshot], None]] = []
        """Called with every new snapshot the moment it becomes current, before anything else
        hears of it: an Evaluator binds the snapshot's read functions as its own here."""
        self._head: Head | None = None
        # The head whose state did not build: no point reloading it again until it moves.
        self._unbuildable: Head | None = None
        self._lock = asyncio.Lock()
        self._reloading = False
        """`reload` holds the lock (for seconds, at millions of subjects)."""
        self._catching_up = asyncio.Lock()
        self._swapped = asyncio.Condition()
        self._connected = False
        self.build_error: str | None = None
        """Why the newest state could not be built (revision, error, records at fault)."""
        self.counts = RefreshCounts()
        self.subscribers = Subscribers()
        """Told of every swap, A/B-test boundary and staleness change (`Update`)."""
        self._told_stale: bool | None = None
        self._source_revision = -1
        self._source_stale = False

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("The replica has not loaded a snapshot yet.")
        return self._snapshot

    @property
    def clock(self) -> Clock:
        """What "now" is for this replica's A/B tests."""
        return self._clock

    @property
    def head(self) -> Head | None:
        """The database head the snapshot reflects; None before a load from the database."""
        return self._head

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    @property
    def connected(self) -> bool:
        """Whether the last attempt to reach the database succeeded."""
        return self._connected

    @property
    def stale(self) -> bool:
        """Whether answers may lag the database: it cannot be reached, was not reached yet,
        its newest state does not build, or (an upstream) announced a later revision or said
        it is stale itself."""
        return (
            not self._connected or self.build_error is not None or self.behind or self._source_stale
        )

    @property
    def behind(self) -> bool:
        """Whether the source announced a revision this snapshot does not include yet."""
        return self.revision < self._source_revision

    def saw_source_staleness(self, stale: bool) -> None:
        """A feed learned whether the source (an upstream server) is stale itself."""
        if stale != self._source_stale:
            self._source_stale = stale
            self._tell_staleness()

    def saw_source_revision(self, revision: int) -> None:
        """A feed learned that the source (an upstream server) is at ``revision`` or later."""
        if revision > self._source_revision:
            self._source_revision = revision
            self._tell_staleness()

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the snapshot was last confirmed current; None before the first."""
        last = self.counts.last_success
        return None if last is None else time.monotonic() - last

    def mark_current(self) -> None:
        """A feed saw that the database has not moved on from this snapshot (an upstream
        feed: that it is connected; `behind` says whether it has caught up)."""
        self._connected = True
        self._confirm()
        self._tell_staleness()

    def mark_disconnected(self) -> None:
        """A feed lost the database: answers are stale until the next successful load."""
        self._connected = False
        self._tell_staleness()

    def count_failure(self) -> None:
        """An attempt to read the database failed."""
        self.counts.failed += 1
        self._connected = False
        self._tell_staleness()

    async def restore(self, state: State, age_seconds: float) -> None:
        """Serve `state`, confirmed current `age_seconds` ago, until the database is back."""
        snapshot = build_snapshot(state, self._clock())
        async with self._lock:
            self._install(snapshot)
            self._head = None  # unknown: the next refresh reloads fully
            self._connected = False
            self.counts.last_success = time.monotonic() - age_seconds
            await self._announce_swap()
            self._tell(None, "restored from the snapshot file")

    async def reload(self, reason: str = "full load") -> None:
        """Load everything from scratch. Raises on failure (after counting it), and
        SnapshotBuildFailed if the state does not build (the last snapshot stays). ``reason``
        is passed to the listeners."""
        async with self._lock:
            self._reloading = True
            try:
                await self._reload(reason)
            finally:
                self._reloading = False

    async def _reload(self, reason: str) -> None:
        """`reload`'s work, under the lock."""
        # The SQL side is imported where it is used: an edge's replica (no database) and its
        # process never load SQLAlchemy or a driver.
        from flaggery.store.loader import load_state_and_head

        try:
            if self._unbuildable is not None and await self._still_unbuildable():
                raise SnapshotBuildFailed(self.build_error)
            state, head = await load_state_and_head(self._database())
        except SnapshotBuildFailed:
            raise
        except Exception:
            self.count_failure()
            raise
        self._connected = True
        try:
            snapshot = self._build(state)
        except SnapshotBuildFailed:
            self._unbuildable = head
            raise
        self.counts.full += 1
        self._head = head
        await self._swap(snapshot)
        self._tell(None, reason)

    async def install(self, state: State, reason: str) -> None:
        """Serve ``state``, received whole from an upstream server (no database). Raises
        SnapshotBuildFailed if it does not build (the last snapshot stays)."""
        async with self._lock:
            snapshot = self._build(state)
            self.counts.full += 1
            self._head = Head(None, state.revision, None)
            self._source_revision = state.revision  # the upstream's, as of now (it may go back)
            await self._swap(snapshot)
            self._tell(None, reason)

    async def patch(self, changes: Sequence[Change]) -> None:
        """Apply change-log entries received from an upstream server, in order. Raises
        ChangeGap when they do not continue the snapshot (then `install` a whole state)."""
        async with self._lock:
            snapshot = await in_steps(self.snapshot.apply_in_steps(changes, self._clock()))
            self.counts.incremental += 1
            self._head = Head(None, snapshot.revision, None)
            await self._swap(snapshot)
            self._tell(changes, None)

    async def refresh(self, read_tail: TailReader | None = None) -> bool:
        """Catch up with the database. On failure, keep the last good snapshot and return False.
        ``read_tail``: how to read the change log (a feed's own connection); the pool's way
        when None."""
        try:
            await self._refresh(read_tail)
        except SnapshotBuildFailed:
            return False  # logged once, with the records at fault, where it was detected
        except Exception:
            log.warning(
                "Snapshot refresh failed; serving revision %s", self.revision, exc_info=True
            )
            return False
        return True

    async def apply_own_commit(self, before: Head, changes: Sequence[Change], after: Head) -> None:
        """A `CommitListener` for the replica's own database handle: this process committed
        ``changes``, taking the database from ``before`` to ``after``. Apply them without
        reading them back, when the snapshot is at ``before``; otherwise the feed, or a
        catch-up after the write, reads them from the change log as usual.

        It waits for a refresh under way (one read of the change log: the feed woken by the
        previous batch's NOTIFY holds the lock at nearly every commit under a stream of
        writes, and skipping then made each batch's writes wait for a catch-up of their own,
        a pooled read of the log), never for a full reload."""
        if self._snapshot is None or self._reloading:
            return
        async with self._lock:
            if self._head != before:  # the feed applied them already, or a reload moved on
                return
            try:
                snapshot = await in_steps(self._snapshot.apply_in_steps(changes, self._clock()))
            except Exception:
                log.warning(
                    "Applying this process's own writes failed",
                    exc_info=True,
                    extra={"revision": after.revision},
                )
                return
            self.counts.incremental += 1
            self._head = after
            self.build_error = None
            await self._swap(snapshot)
            self._tell(changes, None)

    async def refresh_to(self, revision: int) -> bool:
        """Catch up until the snapshot includes ``revision``, a committed write's. Concurrent
        callers share refreshes: one that waited for another's finds its revision applied and
        reads nothing, so a batch of writes costs one refresh, not one each. Returns False if
        the database failed (the current snapshot is kept)."""
        if self.revision >= revision:
            return True
        async with self._catching_up:
            return self.revision >= revision or await self.refresh()

    async def catch_up(self, head: Head) -> Snapshot:
        """The snapshot as of `head` or later (read-your-writes). Raises on failure."""
        if self._snapshot is None:
            await self.reload()
        if self._head != head:
            await self._refresh()
        self.advance_time()
        return self.snapshot

    def advance_time(self) -> None:
        """Rebuild the views for the current time if an A/B test has started or ended."""
        if self._snapshot is None:
            return
        advanced = self._snapshot.at(self._clock())
        if advanced is not self._snapshot:
            self._install(advanced)
            self._tell((), None)

    @property
    def revision(self) -> int:
        return -1 if self._snapshot is None else self._snapshot.revision

    async def wait_for_revision(self, revision: int) -> None:
        async with self._swapped:
            await self._swapped.wait_for(lambda: self.revision >= revision)

    async def _refresh(self, read_tail: TailReader | None = None) -> None:
        if self._snapshot is None or self._head is None:
            await self.reload()
            return
        async with self._lock:
            reason = await self._apply_changes(self.snapshot, self._head, read_tail)
        if reason is not None:
            log.info(
                "Full reload after revision %s: %s",
                self.revision,
                reason,
                extra={"revision": self.revision},
            )
            await self.reload(reason)

    async def _apply_changes(
        self, current: Snapshot, applied: Head, read_tail: TailReader | None
    ) -> str | None:
        """Apply the change log after `applied` (under the lock). Returns None when done, or
        why only a full reload can catch up."""
        head, changes, reached = await self._read_tail(applied, read_tail)
        if head == applied:
            self.mark_current()
            return None
        if head == self._unbuildable:
            return None  # still the state that failed to build: keep serving, stale
        reason = rewritten(applied, head)
        if reason is not None:
            return reason
        if changes is None:
            return f"the change log no longer continues revision {applied.revision}"
        if reached.revision < head.revision:
            return f"the change log has no row for revision {reached.revision + 1}"
        try:
            snapshot = await in_steps(current.apply_in_steps(changes, self._clock()))
        except ChangeGap as gap:
            return str(gap)
        except Exception as error:
            log.warning(
                "Applying changes failed: %r",
                error,
                exc_info=True,
                extra={"revision": reached.revision},
            )
            return f"applying the changes failed ({error!r})"
        self.counts.incremental += 1
        self._head = reached
        self.build_error = None
        await self._swap(snapshot)
        if changes:
            self._tell(changes, None)
        else:
            self._tell_staleness()
        return None

    async def _read_tail(self, applied: Head, read_tail: TailReader | None) -> Tail:
        """The change log after `applied`, by `read_tail` or through the pool; a failure is
        counted and raised."""
        from flaggery.store.log_tail import read_tail_pooled  # see `reload`

        try:
            if read_tail is None:
                return await read_tail_pooled(self._database(), applied)
            return await read_tail(applied)
        except Exception:
            self.count_failure()
            raise

    async def _still_unbuildable(self) -> bool:
        """Whether the database is still at the head whose state did not build: then a full
        load would only fail again (and a replica retrying it, from a restored file or at
        every reconnect, would load everything each time)."""
        from flaggery.store.database import read_head  # see `reload`

        async with self._database().read() as conn:
            head = await read_head(conn)
        if head != self._unbuildable:
            return False
        self._connected = True
        self._tell_staleness()
        return True

    def _database(self) -> Database:
        if self._db is None:
            raise RuntimeError("This replica follows an upstream server: it has no database.")
        return self._db

    def _build(self, state: State) -> Snapshot:
        """build_snapshot, or record which records made it fail and raise SnapshotBuildFailed."""
        now = self._clock()
        try:
            snapshot = build_snapshot(state, now)
        except Exception as error:
            faults = "; ".join(faulty_records(state, now)) or "no single record"
            self.build_error = (
                f"revision {state.revision} does not build ({error!r}); at fault: {faults}"
            )
            self.counts.failed += 1
            self._tell_staleness()
            log.error(
                "%s. Serving revision %s until a later revision builds.",
                self.build_error,
                self.revision,
                exc_info=True,
                extra={"revision": state.revision},
            )
            raise SnapshotBuildFailed(self.build_error) from error
        self.build_error = None
        self._unbuildable = None
        return snapshot

    async def _swap(self, snapshot: Snapshot) -> None:
        # The subscribers hear of the swap (and of being current again) from `_tell`.
        self._install(snapshot)
        self._connected = True
        self._confirm()
        await self._announce_swap()

    def _install(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        for hook in self.swap_hooks:
            hook(snapshot)

    def _confirm(self) -> None:
        """The snapshot is confirmed current now, unless the source is known to be ahead."""
        if not self.behind and not self._source_stale:
            self.counts.last_success = time.monotonic()

    def _tell(self, changes: Sequence[Change] | None, reason: str | None) -> None:
        self._told_stale = self.stale
        self.subscribers.tell(Update(self.snapshot, changes, reason, self._told_stale))

    def _tell_staleness(self) -> None:
        """Tell the subscribers if staleness moved since they last heard (nothing before the
        first snapshot: there is nothing to be stale about)."""
        if self._snapshot is not None and self.stale != self._told_stale:
            self._tell((), None)

    async def _announce_swap(self) -> None:
        async with self._swapped:
            self._swapped.notify_all()


async def in_steps(steps: Steps[T]) -> T:
    """Run an engine computation, letting the event loop run other work (the requests this
    process serves) between its steps: a configuration change re-resolves every view, about
    1.3 ms of CPU at 100,000 subjects in one piece (a replica timed under the writes of
    bench/change_writer.py); bench/swap_stall_bench.py measures what the loop is held for."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await asyncio.sleep(0)
