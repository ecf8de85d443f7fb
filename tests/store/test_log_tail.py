"""The change log after a replica's head, read through the pool and on a plain asyncpg
connection (flaggery.store.log_tail): both readers give the same tail in every case."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flaggery.store.database import read_head
from flaggery.store.head import Head
from flaggery.store.log_tail import LogRow, Tail, read_tail_asyncpg, read_tail_pooled, tail_of
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn

FACTS = '[{"type":"bucket","id":1}]'


async def tails(store: AsyncFlaggery, db_url: str, applied: Head) -> list[Tail]:
    """The tail after `applied` from every reader this database has."""
    found = [await read_tail_pooled(store.database, applied)]
    if store.database.is_postgres:
        conn = await asyncpg.connect(libpq_dsn(make_url(db_url)))
        try:
            found.append(await read_tail_asyncpg(conn, applied))
        finally:
            await conn.close()
    return found


async def head_of(store: AsyncFlaggery) -> Head:
    async with store.database.read() as conn:
        return await read_head(conn)


@pytest.fixture
async def written(store: AsyncFlaggery) -> AsyncIterator[tuple[Head, Head]]:
    """A store with a bucket and three subjects; its heads after the bucket and at the end."""
    await store.increase_buckets(1)
    after_bucket = await head_of(store)
    for subject_id in (1, 2, 3):
        await store.add_subject(subject_id, subject_id)
    yield after_bucket, await head_of(store)


async def test_the_tail_after_a_head_is_its_later_writes_in_order(
    store: AsyncFlaggery, db_url: str, written: tuple[Head, Head]
) -> None:
    applied, head = written
    for tail in await tails(store, db_url, applied):
        assert tail.head == head
        assert tail.reached == head
        assert tail.changes is not None
        assert [c.revision for c in tail.changes] == [head.revision - 2, head.revision - 1,
                                                      head.revision]  # fmt: skip
        assert [c.facts[0].id for c in tail.changes] == [1, 2, 3]  # type: ignore[union-attr]


async def test_a_head_that_has_not_moved_has_an_empty_tail(
    store: AsyncFlaggery, db_url: str, written: tuple[Head, Head]
) -> None:
    _, head = written
    assert await tails(store, db_url, head) == [Tail(head, [], head)] * (
        2 if store.database.is_postgres else 1
    )


async def test_a_head_the_log_does_not_continue_has_no_changes(
    store: AsyncFlaggery, db_url: str, written: tuple[Head, Head]
) -> None:
    applied, head = written
    another_write = applied._replace(change_id="0" * 32)
    for tail in await tails(store, db_url, another_write):
        assert tail == Tail(head, None, another_write)


async def test_a_history_that_went_back_reads_no_rows(
    store: AsyncFlaggery, db_url: str, written: tuple[Head, Head]
) -> None:
    _, head = written
    ahead = head._replace(revision=head.revision + 5)
    for tail in await tails(store, db_url, ahead):
        assert tail == Tail(head, [], ahead)


def test_rows_from_revision_zero_are_all_new() -> None:
    applied = Head("db", 0, None)
    rows = [LogRow(1, "a", "increase_buckets", FACTS), LogRow(2, "b", "increase_buckets", FACTS)]
    tail = tail_of(applied, Head("db", 2, "b"), rows)
    assert tail.changes is not None
    assert [c.revision for c in tail.changes] == [1, 2]
    assert tail.reached == Head("db", 2, "b")


def test_rows_that_stop_short_of_the_head_reach_only_as_far_as_they_go() -> None:
    applied = Head("db", 1, "a")
    rows = [LogRow(1, "a", "increase_buckets", FACTS), LogRow(2, "b", "increase_buckets", FACTS)]
    tail = tail_of(applied, Head("db", 3, "c"), rows)
    assert tail.reached == Head("db", 2, "b")  # the replica then reloads: row 3 is missing
