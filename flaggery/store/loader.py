"""Read the resolution state, all of it (the changes since a revision: flaggery.store.log_tail).

A full load must be one consistent picture. PostgreSQL gives that with a REPEATABLE READ
transaction; on SQLite each statement may see a newer commit, so the load reads the revision
before and after and starts again if a write slipped in between.
"""

from __future__ import annotations

import contextlib
from array import array
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import State, SubjectColumns
from flaggery.store import tables as t
from flaggery.store.database import Database, read_head
from flaggery.store.head import Head
from flaggery.store.queries import (
    read_abtests,
    read_features,
    read_groups,
    read_key_splits,
    read_rollouts,
)
from flaggery.store.subjects.load import Helpers, read_subject_columns

__all__ = ["StateChanged", "load_state", "load_state_and_head"]

STREAM_BATCH = 20_000
LOAD_ATTEMPTS = 5


class StateChanged(Exception):
    """Writes kept landing while a full load ran; try again later."""


async def load_state(db: Database) -> State:
    """The full state, consistent as of one revision. Raises StateChanged (see above)."""
    state, _head = await load_state_and_head(db)
    return state


async def load_state_and_head(db: Database) -> tuple[State, Head]:
    """The full state and the head it is the state of, read in one consistent picture."""
    for _ in range(LOAD_ATTEMPTS):
        async with db.read() as conn:
            if db.is_postgres:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                before = await read_head(conn)
                state = await _read_state(conn, before.revision, db)
                if await read_head(conn) == before:
                    return state, before
    raise StateChanged(f"The state changed during {LOAD_ATTEMPTS} consecutive full loads.")


async def _read_state(conn: AsyncConnection, revision: int, db: Database) -> State:
    bucket_ids = (await conn.execute(select(t.buckets.c.id).order_by(t.buckets.c.id))).scalars()
    return State(
        revision=revision,
        buckets=tuple(bucket_ids),
        subjects=await _read_subject_columns(conn, db),
        memberships=await _read_memberships(conn),
        features=await read_features(conn),
        rollouts=await read_rollouts(conn),
        abtests=await read_abtests(conn),
        groups=await read_groups(conn),
        key_salt=await _read_key_salt(conn),
        key_splits=await read_key_splits(conn),
    )


async def _read_key_salt(conn: AsyncConnection) -> bytes:
    salt = (await conn.execute(select(t.state.c.key_salt))).scalar_one()
    if salt is None:
        raise ValueError("The database has no targeting-key salt: run `flaggery db upgrade`.")
    return bytes.fromhex(salt)


async def _read_subject_columns(conn: AsyncConnection, db: Database) -> SubjectColumns:
    # No Python object per row on PostgreSQL (flaggery.store.subjects.binary_copy).
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        return await read_subject_columns(raw.driver_connection, _lender(db))
    columns = SubjectColumns(array("q"), array("q"), array("q"))
    query = select(t.subjects.c.id, t.subjects.c.weight, t.subjects.c.bucket_id).order_by(
        t.subjects.c.id
    )
    result = await conn.stream(query.execution_options(yield_per=STREAM_BATCH))
    async for rows in result.partitions():
        ids, weights, buckets = zip(*rows, strict=True)
        columns.ids.extend(ids)
        columns.weights.extend(weights)
        columns.buckets.extend(buckets)
    return columns


def _lender(db: Database) -> Helpers:
    """Lends ``count`` more connections of ``db``'s pool, as asyncpg connections."""

    @contextlib.asynccontextmanager
    async def lend(count: int) -> AsyncIterator[list[Any]]:
        async with contextlib.AsyncExitStack() as stack:
            lent = []
            for _ in range(count):
                conn = await stack.enter_async_context(db.read())
                lent.append((await conn.get_raw_connection()).driver_connection)
            yield lent

    return lend


async def _read_memberships(conn: AsyncConnection) -> dict[int, tuple[str, ...]]:
    query = select(t.group_members.c.subject_id, t.group_members.c.group).order_by(
        t.group_members.c.subject_id, t.group_members.c.joined, t.group_members.c.group
    )
    memberships: dict[int, list[str]] = defaultdict(list)
    for subject_id, group in await conn.execute(query):
        memberships[subject_id].append(group)
    return {subject_id: tuple(names) for subject_id, names in memberships.items()}
