"""The database handle: engine creation, read and write transactions, outage translation.

Every write has its own revision and change-log row, and is applied on its own; the writes a
process makes concurrently share one transaction (group commit, flaggery.store.group_commit).
A batch transaction first touches the global revision row. That UPDATE takes the row lock on
PostgreSQL (and the write lock on SQLite) before anything is read, so writers from any number
of processes are serialized by the database, and validation always sees the state the write
will change. Each write then runs in its own SAVEPOINT with the next revision: one that fails
or changes nothing is rolled back alone and takes no revision. The batch ends by appending the
change-log rows of its writes, setting the revision to the last of them and, on PostgreSQL,
one ``pg_notify('flaggery', revision)``, delivered only if it commits (there all of that is
one statement, flaggery.store.batch_statements). Revisions stay contiguous, one per committed
write, in the order the writes were applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import sqlalchemy.exc
from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from flaggery.clock import Clock, utc_now
from flaggery.engine.model import Change, Fact, ReloadFact, SubjectsFact, encode_facts
from flaggery.errors import DatabaseUnavailable
from flaggery.store import tables as t
from flaggery.store.actor import current_actor, default_actor
from flaggery.store.batch_statements import log_batch
from flaggery.store.change_index import touch_rows
from flaggery.store.group_commit import GroupCommit
from flaggery.store.head import Head
from flaggery.store.planned_writes import Applied, Outcome, SubjectWrite, apply_subject_writes
from flaggery.store.urls import async_url, is_postgres, is_sqlite

__all__ = [
    "OUTAGES",
    "Batch",
    "CommitListener",
    "Database",
    "WriteTransaction",
    "joining",
    "last_written_revision",
    "read_head",
    "translate_outage",
]

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "flaggery"
# Connecting, or checking a pooled connection out, takes milliseconds on a healthy network; a
# server that has not answered in this time is treated as down, so an admin write during an
# outage fails in seconds rather than waiting for a statement timeout.
CONNECT_TIMEOUT_SECONDS = 3.0
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# A change-log row is read by every replica, whole: beyond either bound a write is logged as
# one ReloadFact, and replicas reload fully instead of patching (10,000 subject facts are
# about 800 KB of JSON, and a full reload of a million subjects takes about 2 s).
MAX_LOGGED_FACTS = 10_000
MAX_LOGGED_BYTES = 1 << 20
# A bulk add of up to 100,000 subjects is one SubjectsFact: at most 32 bytes a subject (the
# columns do not compress), 5.5 for an import batch; reading it costs a replica milliseconds,
# where reloading ten million subjects costs seconds.
MAX_LOGGED_BULK_BYTES = 4 << 20

# What asyncpg raises when the server is down, starting up, shutting down, went away
# mid-statement, or refuses this client (database dropped, role not allowed to log in, wrong
# password, too many connections): each means "try again later", never "this request is
# wrong", and each is what an operator fixes on the database side.
POSTGRES_OUTAGES: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InvalidAuthorizationSpecificationError,  # class 28: NOLOGIN, bad password
    asyncpg.InvalidCatalogNameError,  # 3D000: the database does not exist (dropped)
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.DatabaseDroppedError,
    asyncpg.InterfaceError,
)
# A database whose flaggery tables are missing (never migrated, or an older schema): the
# server is reachable but there is nothing to read or write until `flaggery db upgrade`.
_POSTGRES_SCHEMA_MISSING = (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError)
_SQLITE_SCHEMA_MISSING = ("no such table", "no such column")
UPGRADE_HINT = (
    "The database has no flaggery schema, or an older one ({reason}): run "
    "`flaggery db upgrade` (or start with FLAGGERY_DB_AUTO_UPGRADE=true), then retry."
)
_RAW_OUTAGES: tuple[type[Exception], ...] = (TimeoutError, OSError, *POSTGRES_OUTAGES)
OUTAGES: tuple[type[Exception], ...] = (DatabaseUnavailable, *_RAW_OUTAGES)
"""Every error that means the database could not be reached, raw or translated."""


# The revision of the last write committed in this context (task): how the HTTP layer tells a
# client which revision to ask a replica for (read-your-writes) without a second query.
_written: ContextVar[int | None] = ContextVar("flaggery_written_revision", default=None)


_open_write: ContextVar[WriteTransaction | None] = ContextVar("flaggery_open_write", default=None)


@contextlib.contextmanager
def joining(tx: WriteTransaction) -> Iterator[None]:
    """Admin writes called inside this block (in this task) are part of `tx`: they record
    their facts on it and commit with it, as one revision and one change-log row. How a
    scheduled step or a release plan makes an ordinary write and records itself in the same
    transaction (flaggery.store.schedules, flaggery.store.plans)."""
    token = _open_write.set(tx)
    try:
        yield
    finally:
        _open_write.reset(token)


def last_written_revision() -> int | None:
    """The revision of the last write committed by this task (None if none committed)."""
    return _written.get()


class Batch:
    """One batch transaction: its connection, the last revision given out, and the change-log
    rows of the writes applied so far."""

    def __init__(self, conn: AsyncConnection, before: Head) -> None:
        self.conn = conn
        self.before = before
        """The database's head when the batch took the lock."""
        self.revision = before.revision
        self.change_id = before.change_id
        self.rows: list[dict[str, object]] = []
        self.touches: list[dict[str, object]] = []
        """The change_touches rows of `rows` (flaggery.store.change_index)."""
        self.changes: list[Change] | None = []
        """What the rows say, for this process's own replicas; None once a row is too large
        to itemize (those replicas then reload, as every other does)."""

    @property
    def after(self) -> Head:
        return Head(self.before.database_id, self.revision, self.change_id)

    def append(self, tx: WriteTransaction, operation: str) -> None:
        """`tx` is applied (its SAVEPOINT released): it takes the next revision."""
        payload, itemized = _payload(tx.facts)
        self.rows.append(
            {
                "revision": tx.revision,
                "change_id": tx.change_id,
                "at": tx.now,
                "actor": tx.actor,
                "operation": operation,
                "payload": payload.decode(),
                "before": _before(tx.before) if itemized else None,
            }
        )
        logged = tx.facts if itemized else [ReloadFact(len(tx.facts))]
        self.touches += touch_rows(tx.revision, logged)
        if self.changes is not None and itemized:
            self.changes.append(Change(tx.revision, operation, tuple(tx.facts)))
        else:
            self.changes = None
        self.revision, self.change_id = tx.revision, tx.change_id


CommitListener = Callable[[Head, Sequence[Change], Head], Awaitable[None]]
"""(head before, the changes committed in order, head after). Must not raise: the writes are
committed whatever it does."""


class _Planned(NamedTuple):
    write: SubjectWrite
    actor: str
    """Read in the caller's task: the actor is the request's (flaggery.store.actor)."""


class WriteTransaction:
    """An open write: its connection, its revision, and the facts it has recorded so far."""

    def __init__(  # noqa: PLR0913 - the parts of one open write, each recorded
        self,
        conn: AsyncConnection,
        revision: int,
        change_id: str,
        now: datetime,
        actor: str,
        earlier: Sequence[Mapping[str, object]] = (),
    ) -> None:
        self.conn = conn
        self.earlier = earlier
        """The change-log rows of the writes applied before this one in its batch: committed
        with it, not yet in the change_log table."""
        self.actor = actor
        self.revision = revision
        self.change_id = change_id
        """Random, unique to this write: tells a rewritten history from the one applied."""
        self.now = now
        self.facts: list[Fact] = []
        self.before: list[Fact] = []
        """What the write changes, as it stood before (flaggery.store.before_state)."""

    def record(self, *facts: Fact) -> None:
        self.facts.extend(facts)

    def remember(self, *facts: Fact) -> None:
        """Record what an entity was before this write changes it (History's "before", and
        what a revert restores)."""
        self.before.extend(facts)


class Database:
    """An async engine for one database URL, with flaggery's transaction discipline."""

    def __init__(self, url: str | URL, *, clock: Clock = utc_now, actor: str | None = None) -> None:
        self.url = async_url(url)
        self.clock = clock
        self.actor = default_actor() if actor is None else actor
        """Recorded on writes made outside `acting_as` (flaggery.store.actor)."""
        self.engine = _create_engine(self.url)
        self.commit_listeners: list[CommitListener] = []
        """Awaited after each batch commits, before its writes are answered: this process's
        replicas apply its own writes without reading them back (read-your-writes)."""
        self._group_commit: GroupCommit[Batch, _Planned, Outcome] = GroupCommit(
            self._batch, self._apply_planned
        )
        self._held: tuple[AsyncConnection, asyncio.AbstractEventLoop] | None = None
        """The last batch's connection, kept for the next batch when writes were waiting."""

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.url)

    async def dispose(self) -> None:
        held, self._held = self._held, None
        if held is not None and held[1] is asyncio.get_running_loop():
            await held[0].close()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with translate_outage():
            async with self._connect() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def write(self, operation: str) -> AsyncIterator[WriteTransaction]:
        """One write, applied alone (its own SAVEPOINT and revision) inside the batch
        transaction it shares with this process's concurrent writes; returns once that
        transaction has committed. It takes a revision only if it recorded facts; otherwise it
        is rolled back, so a no-op neither bumps the revision nor adds a change-log row.
        Raises what the block raised (the write is undone), or DatabaseUnavailable if the
        batch did not commit (nothing of it was written)."""
        joined = _open_write.get()
        if joined is not None:  # a write made inside another is part of it (see `joining`)
            yield joined
            return
        with translate_outage():
            async with self._group_commit.turn() as batch:
                actor = current_actor() or self.actor
                tx = WriteTransaction(
                    batch.conn,
                    batch.revision + 1,
                    uuid.uuid4().hex,
                    self.clock(),
                    actor,
                    batch.rows,
                )
                async with batch.conn.begin_nested() as savepoint:
                    yield tx
                    if not tx.facts:
                        await savepoint.rollback()
                if tx.facts:
                    batch.append(tx, operation)
        if tx.facts:
            _written.set(tx.revision)  # committed: the batch has closed

    async def apply(self, write: SubjectWrite) -> Applied:
        """One single-subject write, planned (flaggery.store.planned_writes): applied with the
        concurrent ones of its batch in a few statements, with its own revision and change-log
        row like every write; returns once the batch has committed. Raises the write's own
        error (SubjectExists, SubjectNotFound, ...; nothing written), or DatabaseUnavailable if
        the batch did not commit."""
        planned = _Planned(write, current_actor() or self.actor)
        with translate_outage():
            outcome = await self._group_commit.submit(planned)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.revision is not None:
            _written.set(outcome.revision)
        return outcome

    async def _apply_planned(self, batch: Batch, plans: Sequence[_Planned]) -> list[Outcome]:
        now = self.clock()
        outcomes = await apply_subject_writes(
            batch.conn, [plan.write for plan in plans], batch.revision, now
        )
        for plan, outcome in zip(plans, outcomes, strict=True):
            if isinstance(outcome, Applied) and outcome.revision is not None:
                tx = WriteTransaction(
                    batch.conn, outcome.revision, uuid.uuid4().hex, now, plan.actor
                )
                tx.record(*outcome.facts)
                tx.remember(*outcome.before)
                batch.append(tx, plan.write.operation)
        return outcomes

    async def revision(self) -> int:
        async with self.read() as conn:
            return int((await conn.execute(select(t.state.c.revision))).scalar_one())

    async def head(self) -> Head:
        """Identity, revision and latest change id: what a replica compares to its own."""
        async with self.read() as conn:
            return await read_head(conn)

    @contextlib.asynccontextmanager
    async def _batch(self) -> AsyncIterator[Batch]:
        """One batch transaction (GroupCommit's ``begin``): lock the revision, lend the batch
        to its writes, then log them, set the head, notify once and commit; then tell the
        `commit_listeners` (before the writes are answered)."""
        with translate_outage():
            async with self._batch_connection() as conn:
                async with conn.begin():
                    head = await _lock_head(conn)
                    batch = Batch(conn, head)
                    yield batch
                    if batch.rows:
                        await _append_changes(batch, notify=self.is_postgres)
                # Before the connection goes back to the pool (a rollback's round trip): the
                # replicas' feed, woken by the NOTIFY, then mostly finds the batch applied
                # rather than reading it back (or reloading, for a bulk add logged as one).
                await self._tell_listeners(batch)

    @contextlib.asynccontextmanager
    async def _batch_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one batch: the previous batch's if it was kept, else a pooled
        one. Kept when writes are waiting as the batch ends: under a stream of writes the
        batches then share one connection, without a checkout each (SQLAlchemy's ping is
        three round trips, BEGIN, a query and ROLLBACK, and about 0.3 ms of CPU). A batch
        that fails gives its connection back (invalidated if it was lost)."""
        held, self._held = self._held, None
        async with contextlib.AsyncExitStack() as stack:
            if held is not None and held[1] is asyncio.get_running_loop() and not held[0].closed:
                conn = held[0]
            else:  # none kept (or one of a closed loop: it cannot be closed from here)
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):  # see `_connect`
                    conn = await self.engine.connect()
            stack.push_async_callback(conn.close)
            yield conn
            if self._group_commit.waiting:
                stack.pop_all()
                self._held = (conn, asyncio.get_running_loop())

    async def _tell_listeners(self, batch: Batch) -> None:
        if not batch.rows or batch.changes is None:
            return
        for listener in self.commit_listeners:
            try:
                await listener(batch.before, batch.changes, batch.after)
            except Exception:  # committed: the writes must be answered as such
                log.warning(
                    "A commit listener failed", exc_info=True, extra={"revision": batch.revision}
                )

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, checked out within CONNECT_TIMEOUT_SECONDS.

        Checking out connects or pings (pool_pre_ping), and a frozen server would leave the
        ping waiting for the 60 s statement timeout: bounded, an outage fails in seconds.
        """
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                conn = await stack.enter_async_context(self.engine.connect())
            yield conn


async def read_head(conn: AsyncConnection) -> Head:
    """The database's current head: one single-row read."""
    query = select(t.state.c.database_id, t.state.c.revision, t.state.c.change_id)
    row = (await conn.execute(query)).one()
    return Head(row.database_id, int(row.revision), row.change_id)


async def _lock_head(conn: AsyncConnection) -> Head:
    """The current head, locked for this transaction: an UPDATE that changes nothing takes
    the row lock on PostgreSQL and the write lock on SQLite (and opens the driver's transaction
    there, so the SAVEPOINTs nest inside it)."""
    c = t.state.c
    statement = (
        update(t.state)
        .where(c.id == 1)
        .values(revision=c.revision)
        .returning(c.database_id, c.revision, c.change_id)
    )
    row = (await conn.execute(statement)).one()
    return Head(row.database_id, int(row.revision), row.change_id)


async def _append_changes(batch: Batch, *, notify: bool) -> None:
    if notify:  # PostgreSQL: rows, touches, head and NOTIFY in one statement
        await log_batch(
            batch.conn, batch.rows, batch.touches, batch.revision, batch.change_id, NOTIFY_CHANNEL
        )
        return
    await batch.conn.execute(insert(t.change_log), batch.rows)
    if batch.touches:
        await batch.conn.execute(insert(t.change_touches), batch.touches)
    head = (
        update(t.state)
        .where(t.state.c.id == 1)
        .values(revision=batch.revision, change_id=batch.change_id)
    )
    await batch.conn.execute(head)


def _before(facts: list[Fact]) -> str | None:
    """The before facts as JSON, or None when there are none or they exceed the bounds."""
    if not facts or len(facts) > MAX_LOGGED_FACTS:
        return None
    before = encode_facts(facts)
    return before.decode() if len(before) <= MAX_LOGGED_BYTES else None


def _payload(facts: list[Fact]) -> tuple[bytes, bool]:
    """The facts as JSON, or one ReloadFact if that would exceed the bounds above; and
    whether they were itemized (not a ReloadFact, nor a write that recorded one)."""
    if any(isinstance(fact, ReloadFact) for fact in facts):
        return encode_facts(facts), False
    if len(facts) <= MAX_LOGGED_FACTS:
        payload = encode_facts(facts)
        bulk = any(isinstance(fact, SubjectsFact) for fact in facts)
        if len(payload) <= (MAX_LOGGED_BULK_BYTES if bulk else MAX_LOGGED_BYTES):
            return payload, True
    return encode_facts([ReloadFact(len(facts))]), False


@contextlib.contextmanager
def translate_outage() -> Any:
    """Connection failures, refusals and a missing schema become DatabaseUnavailable (503):
    the write was not applied, and the message says what to do."""
    try:
        yield
    except _RAW_OUTAGES as error:
        raise _unavailable(str(error) or type(error).__name__) from error
    except sqlalchemy.exc.DBAPIError as error:
        cause = None if error.orig is None else error.orig.__cause__
        if isinstance(cause, _POSTGRES_SCHEMA_MISSING) or any(
            text in str(error.orig) for text in _SQLITE_SCHEMA_MISSING
        ):
            raise DatabaseUnavailable(UPGRADE_HINT.format(reason=error.orig)) from error
        if (
            error.connection_invalidated
            or isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
            # The asyncpg adapter wraps server errors it has no DB-API class for, such as
            # "the database system is shutting down", in a plain DBAPIError.
            or isinstance(cause, POSTGRES_OUTAGES)
        ):
            raise _unavailable(error.orig) from error
        raise


def _unavailable(reason: object) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"The database is unreachable ({reason}). Retry later.")


def _create_engine(url: URL) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            # A pool of SQLite connections buys nothing and holds file locks across tests.
            poolclass=NullPool,
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": 60},
    )


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the polling reader run while an admin write is open; foreign keys are off by
    # default in SQLite and we rely on them.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
