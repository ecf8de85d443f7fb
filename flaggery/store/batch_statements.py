"""A batch's own statements on PostgreSQL, one round trip each, run on the driver connection.

The group commit (flaggery.store.group_commit) applies single-subject writes many at a time
(flaggery.store.planned_writes) and ends every batch by logging its writes. Through
SQLAlchemy that was ten statements a batch (four reads, three writes, three for the log and
the head), each with about 0.15 ms of the admin process's CPU in SQLAlchemy alone and a round
trip to a server that shares the machine. Here each step is one statement of fixed text, so
asyncpg prepares it once per connection and runs it by name:

- `read_rows`: the subjects the writes name with their groups, the groups they name, the
  bucket weights and the removed subjects' buckets (for adds), as one UNION ALL;
- `write_rows`: the net change, every table in one statement (data-modifying WITH queries
  over arrays, each empty when there is nothing of its kind);
- `log_batch`: the change-log rows, their change_touches rows, the head and the NOTIFY.

They run on the batch's own connection inside the transaction SQLAlchemy opened (the revision
lock is taken first, through it), so they see and make exactly what the SQLAlchemy statements
did; SQLite keeps those (flaggery.store.planned_writes, flaggery.store.database).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BatchRows", "RowChanges", "driver", "log_batch", "read_rows", "write_rows"]

_SUBJECT, _MEMBER, _GROUP, _BUCKET, _REMOVED = range(5)

_READ = f"""
SELECT {_SUBJECT} AS kind, id, weight, bucket_id AS bucket, NULL::text AS name
  FROM subjects WHERE id = any($1::int8[])
UNION ALL
SELECT {_MEMBER}, subject_id, joined, NULL, "group"
  FROM group_members WHERE subject_id = any($1::int8[])
UNION ALL
SELECT {_GROUP}, NULL, NULL, NULL, name FROM groups WHERE name = any($2::text[])
UNION ALL
SELECT {_BUCKET}, id, weight, NULL, NULL FROM buckets WHERE $3::bool
UNION ALL
SELECT {_REMOVED}, id, NULL, bucket_id, NULL
  FROM removed_subjects WHERE id = any($4::int8[]) AND removed_at >= $5::timestamptz
ORDER BY 1, 2, 3, 5
"""
# Members in (subject, joined, group) order: a subject's groups in join order, as
# flaggery.store.planned_writes.read_subjects reads them.

_WRITE = """
WITH added AS (
  INSERT INTO subjects (id, weight, bucket_id)
  SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[])
), reweighed AS (
  UPDATE subjects SET weight = r.weight FROM unnest($4::int8[], $5::int8[]) AS r (id, weight)
  WHERE subjects.id = r.id
), weighed AS (
  UPDATE buckets SET weight = buckets.weight + d.delta
  FROM unnest($6::int4[], $7::int8[]) AS d (id, delta) WHERE buckets.id = d.id
), left_groups AS (
  DELETE FROM group_members USING unnest($8::text[], $9::int8[]) AS l (name, subject)
  WHERE group_members."group" = l.name AND group_members.subject_id = l.subject
), joined AS (
  INSERT INTO group_members ("group", subject_id, joined)
  SELECT * FROM unnest($10::text[], $11::int8[], $12::int8[])
)
DELETE FROM removed_subjects WHERE id = any($13::int8[])
"""
# The parts of one statement run in no given order, each on the rows as they were before it:
# a membership left and joined again in the same batch (a new join revision) is deleted by
# its own statement first (`write_rows`). Foreign keys are checked when the statement ends,
# so members of subjects added by it are accepted.

_DELETE_MEMBERS = """
DELETE FROM group_members USING unnest($1::text[], $2::int8[]) AS l (name, subject)
WHERE group_members."group" = l.name AND group_members.subject_id = l.subject
"""

_LOG = """
WITH logged AS (
  INSERT INTO change_log (revision, at, operation, payload, change_id, actor, before)
  SELECT * FROM unnest(
    $1::int8[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]
  )
), touched AS (
  INSERT INTO change_touches (kind, name, revision)
  SELECT * FROM unnest($8::text[], $9::text[], $10::int8[])
)
UPDATE flaggery_state SET revision = $11::int8, change_id = $12::text WHERE id = 1
RETURNING pg_notify($13::text, ($11::int8)::text)
"""


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn` (its transaction is SQLAlchemy's)."""
    return (await conn.get_raw_connection()).driver_connection


@dataclass
class BatchRows:
    """What `read_rows` found."""

    subjects: dict[int, tuple[int, int]]
    """id -> (weight, bucket) of the named subjects that exist."""
    groups_of: dict[int, list[str]]
    """id -> its groups in join order."""
    groups: set[str]
    """The named groups that exist."""
    bucket_weights: dict[int, int]
    """Every bucket's weight, if asked for."""
    removed: dict[int, int]
    """id -> remembered bucket, of the asked ids removed since the cutoff."""


async def read_rows(  # noqa: PLR0913 - one parameter per part of the query
    conn: AsyncConnection,
    ids: Sequence[int],
    groups: Sequence[str],
    *,
    buckets: bool,
    removed: Sequence[int],
    removed_since: datetime,
) -> BatchRows:
    """One query for everything a run of planned writes reads: the subjects `ids` with
    their groups, which of `groups` exist, every bucket's weight if `buckets`, and the
    remembered buckets of `removed` removed at or after `removed_since`."""
    rows = await (await driver(conn)).fetch(
        _READ, list(ids), list(groups), buckets, list(removed), removed_since.astimezone(UTC)
    )
    found = BatchRows({}, {}, set(), {}, {})
    for kind, sid, weight, bucket, name in rows:
        if kind == _SUBJECT:
            found.subjects[sid] = (weight, bucket)
        elif kind == _MEMBER:
            found.groups_of.setdefault(sid, []).append(name)
        elif kind == _GROUP:
            found.groups.add(name)
        elif kind == _BUCKET:
            found.bucket_weights[sid] = weight
        else:
            found.removed[sid] = bucket
    return found


@dataclass
class RowChanges:
    """The net change of a run of planned writes, as parallel columns."""

    added: tuple[list[int], list[int], list[int]]
    """New subjects: ids, weights, buckets."""
    reweighed: tuple[list[int], list[int]]
    """Subjects' new weights: ids, weights."""
    deltas: tuple[list[int], list[int]]
    """Bucket weight changes: bucket ids, deltas."""
    left: tuple[list[str], list[int]]
    """Memberships ended (or restarted): groups, subject ids."""
    joined: tuple[list[str], list[int], list[int]]
    """Memberships started: groups, subject ids, join revisions."""
    forgotten: list[int]
    """Removed subjects registered again: their memories go."""


async def write_rows(conn: AsyncConnection, changes: RowChanges) -> None:
    """Write `changes` in one statement (two when a membership ends and starts again)."""
    raw = await driver(conn)
    left = changes.left
    if set(zip(*left, strict=True)) & set(zip(*changes.joined[:2], strict=True)):
        await raw.execute(_DELETE_MEMBERS, *left)
        left = ([], [])
    await raw.execute(
        _WRITE,
        *changes.added,
        *changes.reweighed,
        *changes.deltas,
        *left,
        *changes.joined,
        changes.forgotten,
    )


async def log_batch(  # noqa: PLR0913 - the rows and the head they lead to
    conn: AsyncConnection,
    rows: Sequence[Mapping[str, Any]],
    touches: Sequence[Mapping[str, Any]],
    revision: int,
    change_id: str | None,
    channel: str,
) -> None:
    """Append the change-log `rows` and their `touches`, set the head to (`revision`,
    `change_id`) and notify `channel` of `revision`: one statement, delivered on commit."""
    columns = ("revision", "at", "operation", "payload", "change_id", "actor", "before")
    logged = [[row[name] for row in rows] for name in columns]
    logged[1] = [at.astimezone(UTC) for at in logged[1]]
    touched = [[row[name] for row in touches] for name in ("kind", "name", "revision")]
    await (await driver(conn)).execute(_LOG, *logged, *touched, revision, change_id, channel)
