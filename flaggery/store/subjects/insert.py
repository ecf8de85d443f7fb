"""Inserting placed subjects: binary COPY on PostgreSQL, batched INSERTs on SQLite.

On PostgreSQL a large batch also sets the subjects' foreign key aside. Checked row by row, the
key costs about 3.5 µs a subject (a trigger runs a query per row; EXPLAIN ANALYZE of a million
inserts, machine shared): some 35 s of a ten-million-subject add. So a batch of at least
LARGE_BATCH subjects, and a sixteenth of the table, drops the key, copies, and adds it back in
the same transaction; adding it back checks the whole table in one join (about 1 s at ten
million). This is what PostgreSQL's manual advises for bulk loads ("Populating a Database:
Remove Foreign Key Constraints"). Meanwhile the transaction holds an ACCESS EXCLUSIVE lock on
subjects, so readers of the table (a replica's full load, a subject read) wait for the add to
commit; serving, which reads snapshots, does not. A role that may not alter the table (not its
owner) keeps the key and pays for it.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.store import tables as t
from flaggery.store.subjects.binary_copy import copy_subjects_in

__all__ = ["insert_subjects"]

LARGE_BATCH = 100_000
# Re-checking the key reads every row (about 0.1 µs each) where keeping it costs about 3.5 µs
# per new row: with a margin, set it aside only when the batch is a sixteenth of the table
# (the planner's row estimate, 0 before the first ANALYZE).
_TABLE_SHARE = 16
# Keeps every statement below SQLite's bound-parameter limit.
SQLITE_BATCH = 5_000
# The COPY of ten million subjects took about 10 s at load average 6, more under heavier load:
# its deadline grows with the batch rather than being the connection's 60 s statement timeout.
_COPY_SECONDS = 60.0
_COPY_SECONDS_PER_ROW = 20e-6

_FOREIGN_KEY = "fk_subjects_bucket_id_buckets"
_DROP_KEY = f"ALTER TABLE subjects DROP CONSTRAINT {_FOREIGN_KEY}"
_ADD_KEY = (
    f"ALTER TABLE subjects ADD CONSTRAINT {_FOREIGN_KEY} "
    "FOREIGN KEY (bucket_id) REFERENCES buckets (id)"
)
_TABLE_ROWS = "SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = 'subjects'::regclass"


async def insert_subjects(conn: AsyncConnection, columns: Sequence[array[int]]) -> None:
    """Insert parallel ids, weights and bucket ids (typecode "q") into subjects.

    Raises IntegrityError (SQLite) or asyncpg's UniqueViolationError (PostgreSQL) if an id
    exists; on PostgreSQL the transaction stays usable (the COPY runs in a savepoint).
    """
    if conn.dialect.name != "postgresql":
        await _insert_rows(conn, columns)
        return
    raw: Any = (await conn.get_raw_connection()).driver_connection
    count = len(columns[0])
    large = count >= LARGE_BATCH and count * _TABLE_SHARE >= await raw.fetchval(_TABLE_ROWS)
    async with raw.transaction():  # a savepoint: a failed COPY leaves the write usable
        key_dropped = large and await _drop_key(raw)
        await copy_subjects_in(raw, columns, _COPY_SECONDS + _COPY_SECONDS_PER_ROW * count)
        if key_dropped:
            await raw.execute(_ADD_KEY)
        if large:
            # Fresh statistics: the next full load's ORDER BY id then reads the primary key
            # (rows added in id order lie in id order) instead of sorting them all on disk.
            await raw.execute("ANALYZE subjects")


async def _drop_key(raw: Any) -> bool:
    """Drop the foreign key if this role may (it owns the table); whether it did."""
    try:
        async with raw.transaction():
            await raw.execute(_DROP_KEY)
    except asyncpg.InsufficientPrivilegeError:
        return False
    return True


async def _insert_rows(conn: AsyncConnection, columns: Sequence[array[int]]) -> None:
    ids, weights, buckets = columns
    for start in range(0, len(ids), SQLITE_BATCH):
        stop = start + SQLITE_BATCH
        rows = zip(ids[start:stop], weights[start:stop], buckets[start:stop], strict=True)
        await conn.execute(
            insert(t.subjects), [{"id": i, "weight": w, "bucket_id": b} for i, w, b in rows]
        )
