"""Run the Alembic history from Python: ``upgrade_db()``, ``flaggery db upgrade``, tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import flaggery.migrations

__all__ = ["alembic_config", "upgrade"]


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(flaggery.migrations.__file__).parent))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` in one transaction."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
