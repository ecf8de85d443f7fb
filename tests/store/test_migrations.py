"""The Alembic history: empty -> head on both databases, down and up again, and no drift."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from flaggery.store.database import Database
from flaggery.store.migrations import alembic_config, upgrade
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock


def _check_no_drift(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.check(config)  # raises if the models and the migrated schema differ


def _downgrade_to_base(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(_check_no_drift)
    finally:
        await db.dispose()


async def test_down_to_empty_and_up_again(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_downgrade_to_base)
        await upgrade(db.engine)
        await upgrade(db.engine)  # already at head: nothing to do
        assert await db.revision() == 0
    finally:
        await db.dispose()


async def test_upgrade_db_creates_a_new_sqlite_database(tmp_path: Path) -> None:
    async with AsyncFlaggery.from_db_url(f"sqlite:///{tmp_path / 'new.db'}") as store:
        await store.upgrade_db()
        await store.increase_buckets(2)
        assert await store.revision() == 1


OLD_ROWS = [
    "INSERT INTO buckets (id, weight) VALUES (1, 5), (2, 4), (3, 0)",
    "INSERT INTO subjects (id, weight, bucket_id) VALUES (1, 5, 1), (2, 4, 2)",
    "INSERT INTO features (name, default_variant) VALUES ('f', 'off')",
    "INSERT INTO variants (feature, name, disabling) "
    "VALUES ('f', 'off', false), ('f', 'on', false)",
    "INSERT INTO rollouts (feature, variant, proportion) VALUES ('f', 'on', 0.5)",
    "INSERT INTO rollout_buckets (feature, bucket_id) VALUES ('f', 1), ('f', 3)",
    "INSERT INTO abtests (name, start, \"end\") VALUES ('t', '2030-01-02', '2030-01-09')",
    "INSERT INTO abtest_groups (test, name, position, proportion) "
    "VALUES ('t', 'a', 0, 0.5), ('t', 'b', 1, 0.5)",
    'INSERT INTO abtest_group_variants (test, "group", feature, variant) '
    "VALUES ('t', 'a', 'f', 'off'), ('t', 'b', 'f', 'on')",
    'INSERT INTO abtest_group_buckets (test, "group", bucket_id) '
    "VALUES ('t', 'b', 1), ('t', 'a', 2), ('t', 'a', 3)",
]


async def test_upgrading_keeps_every_rollout_and_test_assignment(db_url: str) -> None:
    """Rows written under revision 0001 (0.2.1-style allocation) keep their buckets exactly
    through 0003; the new rules apply from the next change on."""
    db = Database(db_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_downgrade_to_base)
        await upgrade(db.engine, "0001")
        async with db.engine.begin() as connection:
            for statement in OLD_ROWS:
                await connection.execute(text(statement))
        await upgrade(db.engine)
    finally:
        await db.dispose()
    async with AsyncFlaggery.from_db_url(db_url, clock=FakeClock()) as store:
        assert (await store.get_rollout("f")).buckets == [1, 3]
        test = await store.get_abtest("t")
        assert [g.buckets for g in test.groups] == [[2, 3], [1]]
        await store.increase_buckets(4)  # the next change follows the new rules
        assert [len(g.buckets) for g in (await store.get_abtest("t")).groups] == [4, 3]
        await store.set_rollout_proportion("f", 1.0)
        assert (await store.get_rollout("f")).buckets == [1, 2, 3, 4, 5, 6, 7]


async def test_upgrading_moves_exposed_subjects_into_bits(db_url: str) -> None:
    """0014: the 's:<id>' rows of exposed_units become bits of exposed_subjects (per test, in
    chunks of 65,536 ids); hashed keys stay rows."""
    db = Database(db_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_downgrade_to_base)
        await upgrade(db.engine, "0011")
        async with db.engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO exposed_units (test, unit) VALUES (:t, :u)"),
                [{"t": "t", "u": u} for u in ("s:3", "s:65537", "s:-1", "k:visitor")],
            )
        await upgrade(db.engine)
        async with db.engine.connect() as connection:
            units = (await connection.execute(text("SELECT unit FROM exposed_units"))).all()
            query = text("SELECT chunk, bits FROM exposed_subjects WHERE test = 't'")
            chunks = {row.chunk: bytes(row.bits) for row in await connection.execute(query)}
    finally:
        await db.dispose()
    assert [row.unit for row in units] == ["k:visitor"]
    assert sorted(chunks) == [-1, 0, 1]
    set_bits = {
        (chunk << 16) + index
        for chunk, bits in chunks.items()
        for index in range(len(bits) * 8)
        if bits[index >> 3] >> (index & 7) & 1
    }
    assert set_bits == {3, 65537, -1}
