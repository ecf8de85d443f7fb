"""Snapshot downloads are bounded in memory and in time (issue 18, item 4c): downloads whose
clients read nothing share one copy of the state, hold a small piece each, and are cut after
STALL_SECONDS; a client that reads gets the whole snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Message

from flaggery.engine import Snapshot
from flaggery.engine.state_codec import decode_state
from flaggery.http import create_app, downloads
from flaggery.http.app import FlaggeryApp
from flaggery.settings import Settings

STALLED = 30


@pytest.fixture
async def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FlaggeryApp]:
    monkeypatch.setattr(downloads, "PIECE_BYTES", 256)
    monkeypatch.setattr(downloads, "STALL_SECONDS", 0.3)
    app = create_app(Settings(db_url=db_url, db_auto_upgrade=False, admin_mode=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            assert (await client.put("/v1/buckets", params={"amount": 2})).status_code == 200
            subjects = [{"id": n, "weight": 1} for n in range(1, 301)]
            assert (await client.post("/v1/subjects", json=subjects)).status_code == 201
        yield app


async def _stalled_download(app: FlaggeryApp, started: asyncio.Event) -> None:
    """A download whose client reads nothing: its first body send never returns."""
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()
        raise AssertionError

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            started.set()
            await never.wait()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/v1/snapshot", "raw_path": b"/v1/snapshot",
        "query_string": b"", "root_path": "", "server": ("localhost", 80),
        "client": ("127.0.0.1", 5000), "headers": [(b"host", b"localhost")],
    }  # fmt: skip
    await app(scope, receive, send)


async def test_stalled_downloads_share_one_state_and_are_cut(
    app: FlaggeryApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    gathered = []
    to_state = Snapshot.to_state

    def counting(snapshot: Snapshot) -> Any:
        gathered.append(snapshot.revision)
        return to_state(snapshot)

    monkeypatch.setattr(Snapshot, "to_state", counting)
    services = app.state.services
    began = time.monotonic()
    started = [asyncio.Event() for _ in range(STALLED)]
    tasks = [asyncio.create_task(_stalled_download(app, event)) for event in started]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 10)
    assert services.downloads.held == 1 and len(gathered) == 1  # one copy for all 30
    await asyncio.wait_for(asyncio.gather(*tasks), 10)  # every one is cut ...
    assert time.monotonic() - began < 5  # ... after STALL_SECONDS, not when the client likes
    assert services.downloads.held == 0  # and the copy is gone with them


async def test_a_reading_client_gets_the_whole_snapshot(app: FlaggeryApp) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/v1/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.flaggery.snapshot"
    state = decode_state(response.content)
    assert state.revision == int(response.headers["x-flaggery-revision"])
    assert list(state.subjects.ids) == list(range(1, 301))
    assert app.state.services.downloads.held == 0
