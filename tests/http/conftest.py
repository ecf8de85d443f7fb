"""HTTP fixtures: the app from ``create_app`` on an empty migrated database (SQLite, then
PostgreSQL), its lifespan run explicitly (httpx's ASGITransport does not run it), and an httpx
client talking to it in-process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from flaggery.http import create_app
from flaggery.settings import Settings
from tests.fakes import FakeClock

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(db_url: str, clock: FakeClock) -> AsyncIterator[MakeClient]:
    """``await make_client(admin_mode=False, ...)``: a client for an app with those settings
    (default: admin mode, no token, no metrics) over the test's database."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(*, raise_app_exceptions: bool = True, **options: Any) -> httpx.AsyncClient:
            values: dict[str, Any] = {"db_url": db_url, "db_auto_upgrade": False}
            values["admin_mode"] = True
            values.update(options)
            app = create_app(Settings(**values), clock=clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
            client = httpx.AsyncClient(transport=transport, base_url="http://localhost")
            return await stack.enter_async_context(client)

        yield make


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client()
