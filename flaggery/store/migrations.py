"""Run the Alembic history from Python: ``upgrade_db()``, ``flaggery db upgrade``, tests."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from flaggery.store.database import translate_outage

__all__ = ["alembic_config", "upgrade"]


def alembic_config() -> Config:
    config = Config()
    # Found, not imported: its env.py imports flaggery.store (an import would be a cycle).
    spec = find_spec("flaggery.migrations")
    assert spec is not None and spec.origin is not None, "flaggery.migrations is not installed"
    config.set_main_option("script_location", str(Path(spec.origin).parent))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database behind ``engine`` to ``revision`` in one transaction; returns the
    schema revisions (Alembic ids such as "0005") before and after, None for a database that
    had no flaggery schema. Equal: there was nothing to do.

    Raises `DatabaseUnavailable` if the database cannot be reached (nothing is migrated);
    other database errors (a wrong role or database name) propagate as SQLAlchemy's.
    """

    def run(connection: Connection) -> tuple[str | None, str | None]:
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return before, MigrationContext.configure(connection).get_current_revision()

    with translate_outage():
        async with engine.begin() as connection:
            return await connection.run_sync(run)
