"""Inserting placed subjects: binary COPY on PostgreSQL, batched INSERTs on SQLite.

On PostgreSQL a batch of KEY_ASIDE_BATCH subjects or more also sets the subjects' foreign key
aside. Checked row by row, the key costs about 3.5 µs a subject on a quiet machine and 9 to
16 µs on a busy one (a trigger runs a query per row): some 35 s of a ten-million-subject add,
and most of each 50,000-subject batch of an import. So such a batch drops the key, copies, and
adds it back in the same transaction (what PostgreSQL's manual advises for bulk loads,
"Populating a Database: Remove Foreign Key Constraints"):

- a batch at least as large as the table was adds the key back checked, in one join over the
  whole table (about 1 s at ten million);
- a smaller one (the third to 200th batch of an import) checks only its own bucket ids, in
  one query, and adds the key back NOT VALID: in force for every later row, without reading
  the table again, so the time per batch stays flat as the table grows. PostgreSQL then
  records the key as not validated (``pg_constraint.convalidated``) until a batch of the first
  kind or ``ALTER TABLE subjects VALIDATE CONSTRAINT fk_subjects_bucket_id_buckets`` checks it
  whole (that takes no lock that blocks reads or writes).

Meanwhile the transaction holds ACCESS EXCLUSIVE locks on subjects and buckets (dropping the
key takes both; no bucket can go while the batch's own check stands in for the key), so
readers of those tables (a replica's full load, a subject read) wait for the add to commit;
serving, which reads snapshots, does not. A role that may not alter the table (not its owner),
or a batch that does not get the locks within KEY_LOCK_WAIT, keeps the key and pays for it.
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

KEY_ASIDE_BATCH = 10_000
# A batch this large, and a sixteenth of the table, refreshes the statistics (see below).
LARGE_BATCH = 100_000
# The table's rows as the planner last counted them (ANALYZE), or as the statistics collector
# counts inserts and deletes since (it lags by about a second), whichever is more. Checking the
# key over the table reads every row (about 0.1 µs each), the new rows' own check costs next to
# nothing: the table is checked whole only when it is no larger than the batch. Statistics are
# refreshed after a LARGE_BATCH that is a sixteenth of the table or more.
_ANALYZE_SHARE = 16
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
_ADD_KEY_UNCHECKED = _ADD_KEY + " NOT VALID"
KEY_LOCK_WAIT = "200ms"
_LOCK_WAIT = "SELECT current_setting('lock_timeout')"
_LOCK_WAIT_SET = "SELECT set_config('lock_timeout', $1, true)"
_KNOWN_BUCKETS = "SELECT count(*) FROM buckets WHERE id = any($1::int4[])"
_TABLE_ROWS = (
    "SELECT greatest(c.reltuples, s.n_live_tup, 0)::int8 FROM pg_class c"
    " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'subjects'::regclass"
)


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
    key_aside = count >= KEY_ASIDE_BATCH
    rows = await raw.fetchval(_TABLE_ROWS) if key_aside else 0
    async with raw.transaction():  # a savepoint: a failed COPY leaves the write usable
        key_dropped = key_aside and await _drop_key(raw)
        await copy_subjects_in(raw, columns, _COPY_SECONDS + _COPY_SECONDS_PER_ROW * count)
        if key_dropped:
            await _restore_key(raw, columns[2], check_table=count >= rows)
        if count >= LARGE_BATCH and count * _ANALYZE_SHARE >= rows:
            # Fresh statistics: the next full load's ORDER BY id then reads the primary key
            # (rows added in id order lie in id order) instead of sorting them all on disk.
            await raw.execute("ANALYZE subjects")


async def _restore_key(raw: Any, buckets: array[int], *, check_table: bool) -> None:
    """Add the foreign key back: checked over the whole table, or, checking only the bucket
    ids of the rows just copied, NOT VALID. Raises asyncpg's ForeignKeyViolationError, as
    the key itself would, for a bucket that does not exist."""
    if check_table:
        await raw.execute(_ADD_KEY)
        return
    distinct = sorted(set(buckets))
    if await raw.fetchval(_KNOWN_BUCKETS, distinct) != len(distinct):
        raise asyncpg.ForeignKeyViolationError(
            f"A new subject's bucket does not exist (buckets {distinct[:10]}...)."
        )
    await raw.execute(_ADD_KEY_UNCHECKED)


async def _drop_key(raw: Any) -> bool:
    """Drop the foreign key if this role may (it owns the table) and the locks come within
    KEY_LOCK_WAIT; whether it did. A reader of subjects or buckets (a replica's full load of
    ten million subjects takes seconds) would otherwise hold the batch up, and every reader
    after it would queue behind the batch's lock request: the batch keeps the key instead."""
    try:
        async with raw.transaction():
            waited = await raw.fetchval(_LOCK_WAIT)
            await raw.execute(_LOCK_WAIT_SET, KEY_LOCK_WAIT)
            await raw.execute(_DROP_KEY)
            await raw.execute(_LOCK_WAIT_SET, waited)  # a failure rolls the setting back
    except (asyncpg.InsufficientPrivilegeError, asyncpg.LockNotAvailableError):
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
