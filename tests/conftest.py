"""Database fixtures: every test that touches a database runs on SQLite and on PostgreSQL.

``db_url`` is parametrized over both. Migrations run once per test run for each database; each
test then starts from an empty, migrated database (a copied SQLite file; truncated PostgreSQL
tables in a database this run created and drops at the end).

PostgreSQL comes from FLAGGERY_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
postgres). Unreachable, its tests skip with the reason, unless FLAGGERY_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from flaggery.store import tables
from flaggery.store.database import Database
from flaggery.store.migrations import upgrade
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn
from tests.fakes import FakeClock

POSTGRES_URL = os.environ.get(
    "FLAGGERY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("FLAGGERY_REQUIRE_POSTGRES") == "1"
# How fast Hypothesis generates inputs, and how long one example takes, measure the machine,
# not the code: on two cores shared with other work, the too_slow health check and the
# per-example deadline failed correct tests. Tests that bound their own time say so.
settings.register_profile(
    "shared-cores", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
settings.load_profile("shared-cores")

TABLES = ", ".join(f'"{table.name}"' for table in tables.metadata.sorted_tables)


# A test marked slow without seconds= is assumed to take about this long.
SLOW_TEST_SECONDS = 5


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: xdist (--dist load) hands tests out in collection order, so a minute-long
    test that starts last ends the run alone while the other workers idle. ``slow(seconds=N)``
    (N: about how long it takes on a quiet 2-core machine) orders the slow tests among
    themselves; the rest keep their order, after them."""

    def expected_seconds(item: pytest.Item) -> float:
        slow = item.get_closest_marker("slow")
        return 0 if slow is None else float(slow.kwargs.get("seconds", SLOW_TEST_SECONDS))

    items.sort(key=expected_seconds, reverse=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    await _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test run; dropped at the end."""
    admin_dsn = libpq_dsn(make_url(POSTGRES_URL))
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (FLAGGERY_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    name = f"flaggery_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        await _migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def clean_postgres(postgres_database: str) -> str:
    """The run's PostgreSQL database, emptied of every row but the revision counter."""
    connection = await asyncpg.connect(libpq_dsn(make_url(postgres_database)))
    try:
        await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        # A new identity and key salt, as a freshly migrated database would have.
        await connection.execute(
            "INSERT INTO flaggery_state (id, revision, database_id, key_salt)"
            " VALUES (1, 0, $1, $2)",
            uuid.uuid4().hex,
            secrets.token_hex(16),
        )
    finally:
        await connection.close()
    return postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of an empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("clean_postgres"))
    path = tmp_path / "flaggery.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def store(db_url: str, clock: FakeClock) -> AsyncIterator[AsyncFlaggery]:
    """An AsyncFlaggery on an empty database, with a settable clock."""
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as flaggery:
        yield flaggery


@pytest.fixture
def is_postgres(db_url: str) -> bool:
    return db_url.startswith("postgresql")
