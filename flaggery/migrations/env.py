"""Alembic environment: async, one history for SQLite (batch mode) and PostgreSQL.

flaggery.store.migrations passes an open connection in ``config.attributes["connection"]``;
the ``alembic`` command line (for developers) passes ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import create_async_engine

from flaggery.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: URL) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from flaggery.store.urls import async_url

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise SystemExit("alembic: set sqlalchemy.url in alembic.ini")
    asyncio.run(_run_with_own_engine(async_url(url)))
