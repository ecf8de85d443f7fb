"""A database that refuses connections once the server runs (NOLOGIN, too many clients,
dropped), and one that was never migrated: admin writes answer 503 DatabaseUnavailable with
a message saying what to do, serving goes on from the snapshot, and writes work again once
the database is fixed. Each test makes its own role and database on the shared server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from flaggery.errors import DatabaseUnavailable
from flaggery.http import create_app
from flaggery.http.app import _no_snapshot
from flaggery.http.endpoint import Services
from flaggery.live.failure_log import FailureLog
from flaggery.settings import Settings
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES
from tests.http.helpers import fails, ok, seed_basics

UPGRADE = "flaggery db upgrade"


class Scratch:
    """A role and a database it owns, and an admin connection to change them."""

    def __init__(self, admin: asyncpg.Connection, role: str, url: str) -> None:
        self.admin, self.role, self.url = admin, role, url
        self.database = make_url(url).database

    async def alter_role(self, options: str) -> None:
        await self.admin.execute(f'ALTER ROLE "{self.role}" {options}')
        # Sessions already open stay valid after ALTER ROLE: end them, as a restart would.
        await self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", self.role
        )


@pytest.fixture
async def scratch() -> AsyncIterator[Scratch]:
    try:
        admin = await asyncpg.connect(libpq_dsn(make_url(POSTGRES_URL)), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is unreachable: {error}")
        pytest.skip(f"PostgreSQL is unreachable: {error}")
    name = f"flaggery_scratch_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE ROLE "{name}" LOGIN')
    await admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    url = make_url(POSTGRES_URL).set(username=name, password=None, database=name)
    try:
        yield Scratch(admin, name, url.render_as_string(hide_password=False))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


@contextlib.asynccontextmanager
async def serving(url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db_url=url, admin_mode=True, db_auto_upgrade=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def _upgrade(url: str) -> None:
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()


Refusal = Callable[[Scratch], Awaitable[None]]
REFUSALS: dict[str, tuple[Refusal, Refusal | None]] = {
    "role NOLOGIN": (lambda s: s.alter_role("NOLOGIN"), lambda s: s.alter_role("LOGIN")),
    "too many clients": (
        lambda s: s.alter_role("CONNECTION LIMIT 0"),
        lambda s: s.alter_role("CONNECTION LIMIT -1"),
    ),
    "database dropped": (
        lambda s: s.admin.execute(f'DROP DATABASE "{s.database}" WITH (FORCE)'),
        None,
    ),
}


@pytest.mark.parametrize("kind", REFUSALS)
async def test_refused_connections_make_writes_503(scratch: Scratch, kind: str) -> None:
    refuse, allow = REFUSALS[kind]
    await _upgrade(scratch.url)
    async with serving(scratch.url) as client:
        await seed_basics(client)
        await refuse(scratch)
        for _ in range(2):  # the first meets the dead pooled connection, the second connects
            message = fails(await client.put("/v1/buckets", params={"amount": 1}), 503,
                            "DatabaseUnavailable")  # fmt: skip
            assert "Retry later" in message
        fails(await client.get("/v1/features"), 503, "DatabaseUnavailable")
        assert ok(await client.get("/v1/subjects/1/flags")) == {"flags": {"f": "A"}}
        if allow is not None:
            await allow(scratch)
            ok(await client.put("/v1/buckets", params={"amount": 1}))


@pytest.fixture(params=["sqlite", "postgres"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    scratch: Scratch = request.getfixturevalue("scratch")
    return scratch.url


async def test_a_database_never_migrated_says_to_upgrade(
    unmigrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flaggery")
    async with serving(unmigrated_url) as client:
        assert UPGRADE in fails(await client.get("/readyz"), 503, "DatabaseUnavailable")
        assert UPGRADE in fails(await client.get("/v1/subjects/1/flags"), 503,
                                "DatabaseUnavailable")  # fmt: skip
        response = await client.put("/v1/buckets", params={"amount": 1})
        assert UPGRADE in fails(response, 503, "DatabaseUnavailable")
        assert any(UPGRADE in record.getMessage() for record in caplog.records)
        await _upgrade(unmigrated_url)
        for _ in range(100):  # the first-snapshot retry picks the schema up
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        ok(await client.put("/v1/buckets", params={"amount": 1}))
        assert ok(await client.get("/readyz"))["ready"] is True


@pytest.mark.parametrize("reason", ['database "x" does not exist', "Run flaggery db upgrade."])
def test_the_no_snapshot_warning_is_sentences(
    reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flaggery")
    services = cast(Services, SimpleNamespace(no_snapshot_reason=None))
    _no_snapshot(
        services, FailureLog(logging.getLogger("flaggery.http")), DatabaseUnavailable(reason)
    )
    (record,) = caplog.records
    assert (
        record.getMessage() == f"No snapshot yet: {reason.rstrip('.')}. Retrying in the background."
    )
    assert services.no_snapshot_reason == f"{reason.rstrip('.')}."  # what readyz and serving say


async def test_the_dashboard_of_a_database_never_migrated_says_to_upgrade_on_a_page(
    unmigrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flaggery")
    async with serving(unmigrated_url) as client:
        for path in ("/ui/features", "/ui/groups", "/ui/history", "/ui/abtests/form"):
            response = await client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("text/html")
            assert "Run <code>flaggery db upgrade</code>" in response.text
        await _upgrade(unmigrated_url)
        for _ in range(100):  # the first-snapshot retry picks the schema up
            if (await client.get("/ui/features")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await client.get("/ui/features")).status_code == 200
