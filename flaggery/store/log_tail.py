"""The change log after a replica's head: what a refresh reads at every write.

Every serving process reads it once per committed write (NOTIFY wakes them all), so it is read
two ways. Through the pool (`read_tail_pooled`, any database): a checkout, which pings the
server, two statements through SQLAlchemy, and a rollback on return. On PostgreSQL's LISTEN
connection (`read_tail_asyncpg`): one prepared statement on a connection the feed holds anyway,
rows as asyncpg records; about a tenth of the CPU (bench/refresh_cpu_bench.py). Both end in
`tail_of`, so they agree on what continues the applied history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from flaggery.engine.model import Change, decode_facts
from flaggery.store.head import Head, rewritten

if TYPE_CHECKING:
    import asyncpg

    from flaggery.store.database import Database

__all__ = ["LogRow", "Tail", "read_tail_asyncpg", "read_tail_pooled", "tail_of"]


class LogRow(NamedTuple):
    revision: int
    change_id: str | None
    operation: str
    payload: str


class Tail(NamedTuple):
    """The database's head, and the change-log entries that lead to it from a replica's."""

    head: Head
    changes: list[Change] | None
    """The entries after the applied head, oldest first; None when the log does not continue
    it (its row was pruned, or written by another write); empty when the head has not moved
    or history was rewritten (`rewritten(applied, head)` says so)."""
    reached: Head
    """Where the entries lead (the applied head when there are none)."""


def tail_of(applied: Head, head: Head, rows: Sequence[LogRow]) -> Tail:
    """The tail from ``rows``: the change-log rows from ``applied.revision`` on, in order."""
    if head == applied or rewritten(applied, head) is not None:
        return Tail(head, [], applied)
    if applied.revision > 0:
        if not rows or (rows[0].revision, rows[0].change_id) != applied[1:]:
            return Tail(head, None, applied)
        rows = rows[1:]
    changes = [Change(row.revision, row.operation, decode_facts(row.payload)) for row in rows]
    if not rows:
        return Tail(head, changes, applied)
    return Tail(head, changes, Head(applied.database_id, rows[-1].revision, rows[-1].change_id))


# One statement: PostgreSQL runs it on one snapshot, so the head and the rows agree. The join
# bound keeps a history that went back (a restored backup) from reading rows it cannot use.
# `s.id = 1` lets the planner count one state row by its key: without it, it estimated the
# row count from the table's size, which every write's update grows until vacuum (1,932 rows
# after 37,000 writes with autovacuum off), and the plan's cost then passed jit_above_cost:
# each read of the tail spent 700 ms compiling itself, and the writes waited for it.
_TAIL_SQL = """
SELECT s.database_id, s.revision, s.change_id, l.revision, l.change_id, l.operation, l.payload
FROM flaggery_state AS s
LEFT JOIN change_log AS l ON l.revision >= $1 AND l.revision <= s.revision
WHERE s.id = 1
ORDER BY l.revision
"""


async def read_tail_asyncpg(conn: asyncpg.Connection, applied: Head) -> Tail:
    """The tail after ``applied``, read on an asyncpg connection (PostgreSQL). Raises what
    asyncpg raises (a lost connection: ConnectionDoesNotExistError, OSError)."""
    records = await conn.fetch(_TAIL_SQL, applied.revision)
    first = records[0]
    head = Head(first[0], int(first[1]), first[2])
    rows = [LogRow(r[3], r[4], r[5], r[6]) for r in records if r[3] is not None]
    return tail_of(applied, head, rows)


async def read_tail_pooled(db: Database, applied: Head) -> Tail:
    """The tail after ``applied``, read through ``db``'s pool (any database): the head, then
    the rows only if it moved on. Raises DatabaseUnavailable or a driver error."""
    from sqlalchemy import select

    from flaggery.store import tables as t
    from flaggery.store.database import read_head

    log = t.change_log.c
    query = (
        select(log.revision, log.change_id, log.operation, log.payload)
        .where(log.revision >= applied.revision)
        .order_by(log.revision)
    )
    # One pooled connection for both reads: each checkout pings the server and each return
    # rolls back.
    async with db.read() as conn:
        head = await read_head(conn)
        if head == applied or rewritten(applied, head) is not None:
            return Tail(head, [], applied)
        rows = [LogRow(*row) for row in await conn.execute(query)]
    return tail_of(applied, head, rows)
