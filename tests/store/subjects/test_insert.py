"""Bulk adds through the COPY path (PostgreSQL) and the INSERT path (SQLite): placement as one
by one, all or nothing, and on PostgreSQL a large batch's foreign key set aside and restored
(checked whole, or NOT VALID after checking the batch's own buckets)."""

from __future__ import annotations

import struct
import uuid
from array import array

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from flaggery import errors
from flaggery.engine.allocation import lightest_bucket
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subjects import insert as subject_insert
from flaggery.store.subjects.binary_copy import encode_rows
from flaggery.store.urls import libpq_dsn
from flaggery.store.validation import MAX_SUBJECT_ID, MIN_SUBJECT_ID
from tests.dbcheck import check_invariants

FOREIGN_KEY = "fk_subjects_bucket_id_buckets"


def one_by_one(buckets: int, weights: list[int]) -> list[int]:
    loads = dict.fromkeys(range(1, buckets + 1), 0)
    placed = []
    for weight in weights:
        bucket = lightest_bucket(loads)
        loads[bucket] += weight
        placed.append(bucket)
    return placed


def test_rows_are_encoded_as_copy_expects() -> None:
    columns = [
        array("q", [MIN_SUBJECT_ID, -1, MAX_SUBJECT_ID, 7]),
        array("q", [1, 2**31 - 1, 3, 4]),
        array("q", [1, 2**31 - 1, 65536, 3]),
    ]
    expected = b"".join(
        struct.pack(">hiqiqii", 3, 8, i, 8, w, 4, b) for i, w, b in zip(*columns, strict=True)
    )
    assert encode_rows(columns, 0, 4) == expected
    assert encode_rows(columns, 1, 3) == expected[34:102]


def spy_on_key_drops(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Large batches from 10 subjects; the list gets whether each large batch dropped the key."""
    monkeypatch.setattr(subject_insert, "KEY_ASIDE_BATCH", 10)
    monkeypatch.setattr(subject_insert, "LARGE_BATCH", 10)
    dropped: list[bool] = []
    drop = subject_insert._drop_key

    async def spy(raw: object) -> bool:
        dropped.append(await drop(raw))
        return dropped[-1]

    monkeypatch.setattr(subject_insert, "_drop_key", spy)
    return dropped


async def _key(store: AsyncFlaggery) -> list[tuple[object, ...]]:
    """The foreign key of subjects.bucket_id as PostgreSQL has it: [(validated,)]."""
    query = text("SELECT convalidated FROM pg_constraint WHERE conname = :name")
    async with store.database.read() as conn:
        return [tuple(row) for row in await conn.execute(query, {"name": FOREIGN_KEY})]


async def test_a_large_batch_is_placed_one_by_one_and_keeps_its_key(
    store: AsyncFlaggery, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = spy_on_key_drops(monkeypatch)
    await store.increase_buckets(3)
    pairs = [(i, i % 7 + 1) for i in range(200, 0, -1)]
    assert await store.add_subjects(pairs) == one_by_one(3, [w for _, w in pairs])
    with pytest.raises(errors.SubjectExists, match="1\\+ subjects exist already: 5"):
        await store.add_subjects([(1000 + i, 1) for i in range(30)] + [(5, 1)])
    assert await store.revision() == 2
    assert (await store.get_buckets()).total_weight == sum(w for _, w in pairs)
    if is_postgres:
        assert dropped == [True, True]  # the second rolled back with its COPY
        assert await _key(store) == [(True,)]
        with pytest.raises(IntegrityError, match=FOREIGN_KEY):
            async with store.database.write("test") as tx:  # the key is back in force
                await tx.conn.execute(text("INSERT INTO subjects VALUES (9999, 1, 999)"))
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_a_role_that_may_not_alter_subjects_keeps_the_key(
    db_url: str, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not is_postgres:
        pytest.skip("table ownership is PostgreSQL's")
    dropped = spy_on_key_drops(monkeypatch)
    role = f"flaggery_writer_{uuid.uuid4().hex[:8]}"
    owner = await asyncpg.connect(libpq_dsn(make_url(db_url)))
    try:
        await owner.execute(f"CREATE ROLE {role} LOGIN")
        await owner.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        url = make_url(db_url).set(username=role).render_as_string(hide_password=False)
        async with AsyncFlaggery.from_db_url(url) as store:
            await store.increase_buckets(2)
            pairs = [(i, 1 + i % 2) for i in range(50)]
            assert await store.add_subjects(pairs) == one_by_one(2, [w for _, w in pairs])
            assert dropped == [False]
            assert await _key(store) == [(True,)]
    finally:
        await owner.execute(f"DROP OWNED BY {role}")
        await owner.execute(f"DROP ROLE {role}")
        await owner.close()


async def test_import_batches_are_placed_one_by_one_and_the_key_stays_in_force(
    store: AsyncFlaggery, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import in batches each a small share of the table: every batch sets the key aside
    and adds it back NOT VALID (no pass over the table); placement is still one by one over
    all the batches, and the key still refuses a row in an unknown bucket."""
    dropped = spy_on_key_drops(monkeypatch)
    await store.increase_buckets(4)
    weights = [(i * 13) % 9 + 1 for i in range(400)]
    await store.add_subjects(list(enumerate(weights[:200])))  # a batch the whole table checks
    if is_postgres:
        async with store.database.read() as conn:
            await conn.execute(text("ANALYZE subjects"))  # counts the table: 200 rows
    placed = []
    for start in range(200, 400, 40):  # each smaller than the table: not read again
        placed += await store.add_subjects([(i, weights[i]) for i in range(start, start + 40)])
    assert placed == one_by_one(4, weights)[200:]
    async with store.database.read() as conn:
        await check_invariants(conn)
    if not is_postgres:
        return
    assert dropped == [True] * 6
    assert await _key(store) == [(False,)]  # in force, not re-validated
    with pytest.raises(IntegrityError, match=FOREIGN_KEY):
        async with store.database.write("test") as tx:
            await tx.conn.execute(text("INSERT INTO subjects VALUES (9999, 1, 999)"))
    await store.add_subjects([(1000 + i, 1) for i in range(2000)])  # larger than the table
    assert await _key(store) == [(True,)]


async def test_a_batch_into_an_unknown_bucket_is_refused(
    store: AsyncFlaggery, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check that stands in for the key refuses what the key would, and the key comes
    back with the savepoint."""
    if not is_postgres:
        pytest.skip("the key is set aside only on PostgreSQL")
    spy_on_key_drops(monkeypatch)
    monkeypatch.setattr(subject_insert, "_TABLE_ROWS", "SELECT 1000000::int8")  # a large table
    await store.increase_buckets(2)
    columns = [array("q", range(20)), array("q", [1] * 20), array("q", [1] * 19 + [3])]
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="does not exist"):
        async with store.database.write("test") as tx:
            await subject_insert.insert_subjects(tx.conn, columns)
    assert await _key(store) == [(True,)]
    assert (await store.get_buckets()).total_weight == 0


async def test_a_batch_keeps_the_key_rather_than_wait_behind_a_reader(
    store: AsyncFlaggery, db_url: str, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long read of subjects (a replica's full load) holds a lock the key's drop needs: the
    batch does not wait for it (queueing every later reader behind it), it keeps the key."""
    if not is_postgres:
        pytest.skip("the key is set aside only on PostgreSQL")
    dropped = spy_on_key_drops(monkeypatch)
    await store.increase_buckets(2)
    reader = await asyncpg.connect(libpq_dsn(make_url(db_url)))
    try:
        async with reader.transaction():
            await reader.fetch("SELECT * FROM subjects")  # holds ACCESS SHARE until the end
            pairs = [(i, 1 + i % 2) for i in range(50)]
            assert await store.add_subjects(pairs) == one_by_one(2, [w for _, w in pairs])
    finally:
        await reader.close()
    assert dropped == [False]
    assert await _key(store) == [(True,)]
    columns = [array("q", range(100, 150)), array("q", [1] * 50), array("q", [1] * 50)]
    with pytest.raises(RuntimeError, match="undone"):
        async with store.database.write("test") as tx:  # no reader: set aside again
            await subject_insert.insert_subjects(tx.conn, columns)
            setting = (await tx.conn.execute(text("SHOW lock_timeout"))).scalar_one()
            raise RuntimeError("undone")
    assert dropped == [False, True]
    assert setting == "0"  # the rest of the write waits for locks as it did before
