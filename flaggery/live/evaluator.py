"""Evaluator: the live snapshot, for the HTTP server and for async applications that embed it.

    async with Evaluator.from_db_url(url) as ev:   # loads, then follows every change
        ev.variants(42)                            # sync, no I/O

Reads are plain method calls on the current immutable snapshot; a background feed swaps in a
new snapshot after every committed write, and a timer rebuilds the views when an A/B test
starts or ends, so a test goes live on time without any write.

With a ``snapshot_path``, the last good snapshot is also kept in that file, and an evaluator
that starts while the database is unreachable serves the file's snapshot (``stale``, with its
``age_seconds``) and connects in the background, fully reloading once it can.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from flaggery.clock import Clock, utc_now
from flaggery.engine import (
    SUBJECT_ATTRIBUTE,
    Evaluation,
    Explanation,
    KeyExplanation,
    Snapshot,
    SubjectView,
)
from flaggery.engine.readers import require_subject_id
from flaggery.errors import DatabaseUnavailable, NotAdmin
from flaggery.live.backoff import RECONNECT, REFUSED, lasting
from flaggery.live.failure_log import FailureLog, level_of
from flaggery.live.feed import ChangeFeed
from flaggery.live.snapshot_file import SavedSnapshot, SnapshotFileWriter, read_snapshot_file
from flaggery.live.tasks import cancel_and_wait
from flaggery.live.updates import Updates
from flaggery.live.upstream_feed import UpstreamFeed
from flaggery.store.replica import RefreshCounts, Replica
from flaggery.store.subscribers import Subscriber

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from flaggery.live.exposure_intake import ExposureIntake
    from flaggery.store.database import CommitListener, Database


__all__ = ["Evaluator"]

OwnCommits: TypeAlias = "tuple[list[CommitListener], CommitListener]"
"""A database handle's commit listeners, and the one that applies them to this evaluator."""

log = logging.getLogger(__name__)

# With an injected clock the timer cannot know when "now" jumps, so it never sleeps longer
# than this before looking at the clock again.
MAX_TIMER_SLEEP_SECONDS = 1.0


class Evaluator:
    """The live snapshot of one database, for resolving flags in process without I/O.

    ``async with Evaluator.from_db_url(url) as ev:`` loads every subject once (`start`), then
    follows the database: LISTEN/NOTIFY on PostgreSQL (a write arrives within milliseconds),
    polling every ``poll_interval`` seconds on SQLite. Reads (`variants`, `variant`,
    `flags_json`, `subject`) are synchronous dictionary lookups on the current immutable
    snapshot, raise SubjectNotFound for an unknown id, and never touch the database, so they
    keep answering, marked `stale`, while the database is down. Memory: about 10 bytes per
    subject plus the per-bucket views (84 MiB RSS for 1,000,000 subjects).
    """

    def __init__(  # noqa: PLR0913 - keyword-only options
        self,
        db: Database,
        *,
        poll_interval: float = 0.25,
        check_interval: float = 15.0,
        snapshot_path: str | os.PathLike[str] | None = None,
        snapshot_interval: float = 5.0,
        owns_db: bool = False,
        exposure_interval: float = 1.0,
    ) -> None:
        """An evaluator over ``db`` (not started: use ``async with`` or `start`).

        ``poll_interval`` (seconds, SQLite only): how often the polling feed reads the revision.
        ``check_interval`` (seconds, PostgreSQL only): the backstop revision check behind
        LISTEN/NOTIFY. ``snapshot_path``: keep the last good snapshot in this file, written at
        most every ``snapshot_interval`` seconds, and start from it when the database is
        unreachable. ``owns_db``: dispose of ``db`` on `stop`. ``exposure_interval``: how often
        exposures recorded with `record_exposure` are written to ``db``.
        """
        from flaggery.live.polling_feed import PollingFeed  # only a database's evaluator
        from flaggery.live.postgres_feed import PostgresFeed  # loads the drivers
        from flaggery.store.database import OUTAGES
        from flaggery.store.urls import libpq_dsn

        replica = Replica(db, db.clock)
        feed: ChangeFeed
        if db.is_postgres:
            feed = PostgresFeed(libpq_dsn(db.url), replica, check_interval)
        else:
            feed = PollingFeed(db, replica, poll_interval)
        owned = db if owns_db else None
        self._setup(owned, replica, feed, snapshot_path, snapshot_interval, OUTAGES)
        # While started, writes made through the same handle (the admin server's) reach the
        # snapshot before they are answered, without a read of the change log.
        self._own_commits: OwnCommits | None = (db.commit_listeners, replica.apply_own_commit)
        self._exposure_db: tuple[Database, float] | None = (db, exposure_interval)

    def _setup(  # noqa: PLR0913 - every part of an Evaluator, put together once
        self,
        owned_db: Database | None,
        replica: Replica,
        feed: ChangeFeed,
        snapshot_path: str | os.PathLike[str] | None,
        snapshot_interval: float,
        outages: tuple[type[Exception], ...] = (DatabaseUnavailable, OSError),
    ) -> None:
        """`outages`: what `start` survives by serving the snapshot file (the source is
        unreachable); a database's (OUTAGES) include its driver's errors."""
        self._owned_db = owned_db
        self._replica = replica
        self._feed = feed
        self._snapshot_path = None if snapshot_path is None else Path(snapshot_path)
        self._snapshot_writer = (
            None
            if self._snapshot_path is None
            else SnapshotFileWriter(self._snapshot_path, self._replica, snapshot_interval)
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._own_commits = None
        self._outages = outages
        self._exposure_db = None
        self._exposures: ExposureIntake | None = None
        replica.swap_hooks.append(self._bind)

    def _bind(self, snapshot: Snapshot) -> None:
        """Make the hot reads the new snapshot's own functions (instance attributes shadow the
        methods below, which document them and answer before the first snapshot): a call
        then costs what the snapshot's costs, with no layer between (issue 25, goal 7)."""
        self.__dict__.update(
            variants=snapshot.variants,
            variant=snapshot.variant,
            flags_json=snapshot.flags_json,
            flags_etag=snapshot.flags_etag,
            evaluate=snapshot.key_evaluator(self._replica.clock),
        )

    @classmethod
    def from_db_url(
        cls,
        url: str | URL,
        *,
        clock: Clock = utc_now,
        snapshot_path: str | os.PathLike[str] | None = None,
        **options: float,
    ) -> Evaluator:
        """An evaluator on ``url`` that owns its connection pool; ``clock`` (aware UTC
        datetimes) decides when A/B tests are live; ``options``: ``poll_interval``,
        ``check_interval``, ``snapshot_interval`` in seconds (see `Evaluator`).
        """
        from flaggery.store.database import Database

        return cls(Database(url, clock=clock), snapshot_path=snapshot_path, owns_db=True, **options)

    @classmethod
    def from_upstream(
        cls,
        url: str,
        *,
        token: str | None = None,
        clock: Clock = utc_now,
        snapshot_path: str | os.PathLike[str] | None = None,
        snapshot_interval: float = 5.0,
    ) -> Evaluator:
        """An evaluator that follows the flaggery server at ``url`` (an admin, read-only or
        edge server) instead of a database: no database driver or credentials, only a
        ``reader`` token if the upstream requires tokens. `start` loads GET /v1/snapshot
        (about as long as sending the state: 24 bytes a subject), then GET /v1/stream keeps
        it current; while the upstream is unreachable the last snapshot is served, `stale`,
        and the stream is resumed with backoff. The same reads as any Evaluator. `refresh`
        returns whether the stream is connected (the stream, not a poll, brings changes).
        """
        evaluator = cls.__new__(cls)
        replica = Replica(None, clock)
        feed = UpstreamFeed(url, token, replica)
        evaluator._setup(None, replica, feed, snapshot_path, snapshot_interval)
        return evaluator

    async def start(self) -> None:
        """Load the first snapshot and follow the database from then on.

        Cost: a full load of the resolution state, every subject included (about 2 s and 84 MiB
        for 1,000,000 subjects, bench/load_bench.py); after that only change-log rows are read.
        If the database is unreachable, serve the snapshot file instead (``stale``) and connect
        in the background; without a readable file, raise what the database raised
        (DatabaseUnavailable, OSError or a driver error).
        """
        if self._own_commits is not None:
            listeners, listener = self._own_commits
            if listener not in listeners:
                listeners.append(listener)
        try:
            await self._feed.start()
        except self._outages as error:
            saved = await self._read_snapshot_file()
            if saved is None:
                raise
            log.log(
                level_of(error),
                "No connection to the %s (%s): serving revision %s from %s, %.1f s old",
                self._source,
                error,
                saved.state.revision,
                self._snapshot_path,
                saved.age_seconds,
                extra={"revision": saved.state.revision},
            )
            await self._replica.restore(saved.state, saved.age_seconds)
            self._spawn(self._start_feed_when_reachable(error), "flaggery-connect")
        if self._snapshot_writer is not None:
            self._snapshot_writer.start()
        self._spawn(self._follow_time(), "flaggery-abtest-timer")

    async def stop(self) -> None:
        """Stop following the database: cancel the feed, the A/B-test timer and the
        snapshot-file writer, and close the pool if this evaluator owns it.
        """
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        if self._own_commits is not None:
            listeners, listener = self._own_commits
            if listener in listeners:
                listeners.remove(listener)  # a stopped evaluator's snapshot stays as it is
        if self._snapshot_writer is not None:
            await self._snapshot_writer.stop()
        await self._feed.stop()
        if self._exposures is not None:
            await self._exposures.close()
            self._exposures = None
        if self._owned_db is not None:
            await self._owned_db.dispose()

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
        """{feature: variant} for the subject, read-only, from the current snapshot.

        No I/O: an array and a tuple lookup, the current snapshot's own function
        (`Snapshot.variants`, bound at every swap: bench/evaluator_bench.py). Raises
        SubjectNotFound for an unknown id, ValidationError for an id that is not an int, and
        RuntimeError before `start` has loaded a snapshot.
        """
        _require_subject_id(subject_id)
        return self._replica.snapshot.variants(subject_id)

    def variant(self, subject_id: int, feature: str) -> str | None:
        """The subject's variant of ``feature``, or None if the feature resolves to nothing for
        it (or does not exist). No I/O. Raises SubjectNotFound for an unknown id.
        """
        _require_subject_id(subject_id)
        return self._replica.snapshot.variant(subject_id, feature)

    def variants_or_defaults(self, subject_id: int) -> Mapping[str, str]:
        """Like `variants`, but a subject that is not registered gets what an unregistered
        subject would: each feature's default variant. No I/O; never `SubjectNotFound`."""
        _require_subject_id(subject_id)
        return self._replica.snapshot.variants_or_defaults(subject_id)

    def variant_or_default(self, subject_id: int, feature: str) -> str | None:
        """Like `variant`, with `variants_or_defaults`' treatment of unknown subjects."""
        _require_subject_id(subject_id)
        return self._replica.snapshot.variants_or_defaults(subject_id).get(feature)

    def flags_json(self, subject_id: int) -> bytes:
        """The bytes the HTTP route sends for the subject: ``{"flags":{feature: variant}}``,
        features in name order, pre-encoded when the snapshot was built. No I/O. Raises
        SubjectNotFound for an unknown id.
        """
        _require_subject_id(subject_id)
        return self._replica.snapshot.flags_json(subject_id)

    def flags_etag(self, subject_id: int) -> bytes:
        """The quoted HTTP ETag of `flags_json(subject_id)`, precomputed with it."""
        _require_subject_id(subject_id)
        return self._replica.snapshot.flags_etag(subject_id)

    def subject(self, subject_id: int) -> SubjectView:
        """The subject's id, weight, bucket and groups (in join order) in the snapshot. No I/O.
        Raises SubjectNotFound for an unknown id.
        """
        _require_subject_id(subject_id)
        return self._replica.snapshot.subject(subject_id)

    def explain(self, subject_id: int) -> Explanation:
        """Where each of the subject's variants comes from, per feature (`Snapshot.explain`). No
        I/O. Raises SubjectNotFound for an unknown id.
        """
        _require_subject_id(subject_id)
        return self._replica.snapshot.explain(subject_id)

    def evaluate(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> Evaluation:
        """What targeting key `key` (any string of 1 to 256 characters without NUL) gets, with
        the evaluation context `context`: ``.flags`` (feature -> variant), ``.subject`` (the
        registered subject it was bucketed by, or None when it was hashed), ``.view.bucket``.
        A subject's canonical decimal id is that subject; ``context[subject_attribute]`` may
        name the subject to bucket by; any other key is hashed (docs/allocation.md). No I/O.
        Raises InvalidTargetingKey, and RuntimeError before `start` has loaded a snapshot.
        """
        return self._replica.snapshot.evaluate(key, context, subject_attribute, self.now())

    def now(self) -> datetime:
        """The evaluator's clock (aware UTC): ``currentTime`` for date rules when a context
        has none, as every adapter over this evaluator passes it."""
        return self._replica.clock()

    def explain_key(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> KeyExplanation:
        """Why `evaluate` answers as it does (`Snapshot.explain_key`). No I/O. Raises
        InvalidTargetingKey."""
        return self._replica.snapshot.explain_key(
            key, context, subject_attribute, self._replica.clock()
        )

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(update)`` (a flaggery.store.subscribers.Update) after every change a
        reader could see: each snapshot swap, in revision order, with the change-log entries
        applied (None and a reason after a full load); an A/B test starting or ending (no
        entries); staleness moving (no entries). Subscribe before `start` to hear the first
        load. It runs synchronously on the feed's or timer's task, so it must not block; one
        that raises is logged and skipped. Returns the function that unsubscribes it.
        """
        return self._replica.subscribers.add(subscriber)

    def updates(self) -> Updates:
        """The same updates as an async iterator: ``with ev.updates() as updates: async for
        update in updates: ...``. A slow consumer is handed the latest update only (at most
        one is held), so it never falls behind; leaving the ``with`` block unsubscribes. See
        flaggery.live.updates.
        """
        return Updates(self._replica.subscribers)

    @property
    def revision(self) -> int:
        """The revision of the current snapshot (-1 before the first load)."""
        return self._replica.revision

    @property
    def counts(self) -> RefreshCounts:
        """Refreshes so far by kind (incremental, full, failed) and feed reconnects."""
        return self._replica.counts

    @property
    def connected(self) -> bool:
        """Whether the last attempt to reach the database succeeded."""
        return self._replica.connected

    @property
    def stale(self) -> bool:
        """Whether answers may lag the source: the database (or upstream) is unreachable or
        was not reached yet, its newest state does not build here, or (an upstream) it
        announced a revision not applied yet or is stale itself."""
        return self._replica.stale

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the snapshot was last confirmed current; None before the first."""
        return self._replica.age_seconds

    @property
    def build_error(self) -> str | None:
        """Why the database's newest state does not build (the records at fault are named);
        None when it builds. Meanwhile the last good snapshot is served, marked stale."""
        return self._replica.build_error

    async def wait_for_revision(self, revision: int, timeout: float | None = None) -> None:
        """Wait until the snapshot includes ``revision`` (read-your-writes across processes:
        take it from `AsyncFlaggery.revision` after a write).

        ``timeout`` in seconds, None to wait for ever. When it passes first, raises the
        built-in ``TimeoutError`` (from ``asyncio.timeout``), not a FlaggeryError: like
        asyncio's own waits, the caller chose the bound, and nothing failed (the snapshot keeps
        following the database; wait again to go on). It is the one exception this method
        raises. On PostgreSQL a write usually arrives within a few milliseconds (LISTEN/NOTIFY);
        on SQLite within ``poll_interval``.
        """
        async with asyncio.timeout(timeout):  # not wait_for: see flaggery.live.tasks
            await self._replica.wait_for_revision(revision)

    async def refresh(self) -> bool:
        """Catch up now instead of waiting for the feed: read the change log since the current
        revision (a full reload after a gap). Returns False if the database failed; the current
        snapshot is kept either way.
        """
        if isinstance(self._feed, UpstreamFeed):
            return self._replica.connected
        return await self._replica.refresh()

    async def refresh_to(self, revision: int) -> bool:
        """`refresh` unless the snapshot already includes ``revision`` (a write this process
        committed); concurrent callers share one refresh. Returns False if the database
        failed."""
        if isinstance(self._feed, UpstreamFeed):
            return self._replica.connected
        return await self._replica.refresh_to(revision)

    def record_exposure(
        self, key: str, test: str, group: str, when: datetime | None = None
    ) -> None:
        """Count that targeting key `key` was shown `group` of A/B test `test` at `when` (aware;
        now if None), as ``POST /v1/exposures`` counts it (docs/experiments.md). No I/O: it is
        classified against the current snapshot at once and tallied; the tally is written to
        the database every ``exposure_interval`` seconds (flaggery.live.exposure_intake) and
        at `stop`. The one line an app needs with OpenFeature:
        ``client.add_hooks([ExposureHook(evaluator.record_exposure)])``. Call it on the
        evaluator's event loop, once started.

        Raises AbTestNotFound, ValidationError (a group the test lacks, a naive time),
        InvalidTargetingKey (nothing tallied then); DatabaseUnavailable when 200,000 exposures
        already wait for an unreachable database; NotAdmin on an evaluator that follows an
        upstream server, which has no database (send them with the remote client's
        `record_exposure`)."""
        intake = self._exposures or self._start_exposures()
        moment = self._replica.clock() if when is None else when
        intake.accept([intake.classifier(self.snapshot).classify(key, test, group, moment)])

    def _start_exposures(self) -> ExposureIntake:
        from flaggery.live.exposure_intake import ExposureIntake  # a database's evaluator only

        if self._exposure_db is None:
            raise NotAdmin(
                "This evaluator follows an upstream server and has no database to count "
                "exposures in: record them with flaggery.client's record_exposure instead."
            )
        db, interval = self._exposure_db
        self._exposures = intake = ExposureIntake(db, interval)
        self._spawn(intake.run(), "flaggery-exposures")
        return intake

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def _read_snapshot_file(self) -> SavedSnapshot | None:
        if self._snapshot_path is None:
            return None
        try:
            return await asyncio.to_thread(read_snapshot_file, self._snapshot_path)
        except (OSError, ValueError) as error:
            log.warning("Ignoring the snapshot file %s: %s", self._snapshot_path, error)
            return None

    async def _start_feed_when_reachable(self, error: Exception) -> None:
        # Logged when the reason changes, not on every attempt; a refused token (an edge's
        # upstream answering 401/403) is an error an operator must fix, retried slowly.
        failures = FailureLog(log)
        failures.reason = str(error)  # start() logged this one
        quick, slow = RECONNECT.delays(), REFUSED.delays()
        while True:
            await asyncio.sleep(next(slow if lasting(error) else quick))
            self._replica.counts.reconnects += 1
            try:
                await self._feed.start()
            except Exception as next_error:
                error = next_error
                failures.failed(
                    str(error),
                    "Still no connection to the %s: %s",
                    self._source,
                    error,
                    level=level_of(error),
                )
                continue
            revision = self._replica.revision
            log.info(
                "Connected to the %s at revision %s",
                self._source,
                revision,
                extra={"revision": revision},
            )
            return

    @property
    def _source(self) -> str:
        return "upstream" if isinstance(self._feed, UpstreamFeed) else "database"

    async def _follow_time(self) -> None:
        while True:
            boundary = self._replica.snapshot.next_boundary
            if boundary is None:
                delay = MAX_TIMER_SLEEP_SECONDS
            else:
                delay = (boundary - self._replica.clock()).total_seconds()
            await asyncio.sleep(min(max(delay, 0.0), MAX_TIMER_SLEEP_SECONDS))
            self._replica.advance_time()


def _require_subject_id(subject_id: object) -> None:
    """Raises ValidationError (an InvalidInput) unless ``subject_id`` is an int (not a bool)."""
    if type(subject_id) is not int:
        raise require_subject_id(subject_id)
