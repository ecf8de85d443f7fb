"""Read the resolution state: all of it, or the changes since a revision.

A full load must be one consistent picture. PostgreSQL gives that with a REPEATABLE READ
transaction; on SQLite each statement may see a newer commit, so the load reads the revision
before and after and starts again if a write slipped in between.
"""

from __future__ import annotations

from array import array
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import Change, State, SubjectColumns, decode_facts
from flaggery.store import tables as t
from flaggery.store.database import Database
from flaggery.store.queries import read_abtests, read_features, read_groups, read_rollouts

__all__ = ["StateChanged", "load_changes", "load_state"]

STREAM_BATCH = 20_000
LOAD_ATTEMPTS = 5


class StateChanged(Exception):
    """Writes kept landing while a full load ran; try again later."""


async def load_state(db: Database) -> State:
    for _ in range(LOAD_ATTEMPTS):
        async with db.read() as conn:
            if db.is_postgres:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                before = await _revision(conn)
                state = await _read_state(conn, before)
                if await _revision(conn) == before:
                    return state
    raise StateChanged(f"The state changed during {LOAD_ATTEMPTS} consecutive full loads.")


async def load_changes(db: Database, after_revision: int) -> list[Change]:
    """Every change-log row after ``after_revision``, oldest first."""
    query = (
        select(t.change_log.c.revision, t.change_log.c.operation, t.change_log.c.payload)
        .where(t.change_log.c.revision > after_revision)
        .order_by(t.change_log.c.revision)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [Change(row.revision, row.operation, decode_facts(row.payload)) for row in rows]


async def _revision(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(t.state.c.revision))).scalar_one())


async def _read_state(conn: AsyncConnection, revision: int) -> State:
    bucket_ids = (await conn.execute(select(t.buckets.c.id).order_by(t.buckets.c.id))).scalars()
    return State(
        revision=revision,
        buckets=tuple(bucket_ids),
        subjects=await _read_subject_columns(conn),
        memberships=await _read_memberships(conn),
        features=await read_features(conn),
        rollouts=await read_rollouts(conn),
        abtests=await read_abtests(conn),
        groups=await read_groups(conn),
    )


async def _read_subject_columns(conn: AsyncConnection) -> SubjectColumns:
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


async def _read_memberships(conn: AsyncConnection) -> dict[int, tuple[str, ...]]:
    query = select(t.group_members.c.subject_id, t.group_members.c.group).order_by(
        t.group_members.c.subject_id, t.group_members.c.joined, t.group_members.c.group
    )
    memberships: dict[int, list[str]] = defaultdict(list)
    for subject_id, group in await conn.execute(query):
        memberships[subject_id].append(group)
    return {subject_id: tuple(names) for subject_id, names in memberships.items()}
