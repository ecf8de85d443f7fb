"""Removed subjects' buckets, remembered for REMEMBERED_FOR: a subject id registered again
within that time lands in the bucket it had, so it keeps its A/B test arm and rollout state
(a user who deletes an account and signs up again during a test must not see both arms).

After REMEMBERED_FOR the id is placed as a new subject (the lightest bucket). Each removal
also deletes the memories that have expired, so the table holds about the removals of the
last REMEMBERED_FOR. ``rm_subject(..., forget=True)`` remembers nothing (an erasure request).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.store import tables as t

__all__ = ["REMEMBERED_FOR", "forget_buckets", "remember_bucket", "remembered_buckets"]

REMEMBERED_FOR = timedelta(days=90)
"""Longer than almost every A/B test and staged rollout runs."""
_IN_LIST = 10_000  # up to this many ids are looked up by id; more read the whole memory


async def remember_bucket(
    conn: AsyncConnection, subject_id: int, bucket: int, now: datetime
) -> None:
    """Remember a removed subject's bucket as of `now`; expired memories go."""
    memory = t.removed_subjects.c
    await conn.execute(
        delete(t.removed_subjects).where(
            (memory.removed_at < now - REMEMBERED_FOR) | (memory.id == subject_id)
        )
    )
    await conn.execute(
        insert(t.removed_subjects).values(id=subject_id, bucket_id=bucket, removed_at=now)
    )


async def remembered_buckets(
    conn: AsyncConnection, ids: Sequence[int], now: datetime
) -> dict[int, int]:
    """subject id -> the bucket it had, for the `ids` removed within REMEMBERED_FOR of `now`.
    One query: by id for up to 10,000 ids, else the whole (unexpired) memory."""
    memory = t.removed_subjects.c
    query = select(memory.id, memory.bucket_id).where(memory.removed_at >= now - REMEMBERED_FOR)
    if len(ids) <= _IN_LIST:
        query = query.where(memory.id.in_(sorted(set(ids))))
    found = {int(row.id): int(row.bucket_id) for row in await conn.execute(query)}
    if len(ids) > _IN_LIST and found:  # one pass, no set of ten million ids
        found = {sid: found[sid] for sid in ids if sid in found}
    return found


async def forget_buckets(conn: AsyncConnection, ids: Sequence[int]) -> None:
    """Drop the memories of `ids` (registered again, or an erasure)."""
    if ids:
        await conn.execute(
            delete(t.removed_subjects).where(t.removed_subjects.c.id.in_(sorted(ids)))
        )
