"""The Alembic history: empty -> head on both databases, down and up again, and no drift."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from flaggery.store.database import Database
from flaggery.store.migrations import alembic_config, upgrade
from flaggery.store.repository import AsyncFlaggery


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
