"""Every event stream of a process counts against one limit, FLAGGERY_MAX_STREAMS (issue 18,
item 4a): GET /v1/stream, the dashboard's /ui/stream and OFREP's /ofrep/v1/events alike; one
beyond it is refused 503 with Retry-After before it starts, and serving goes on."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator

import pytest

from flaggery.http import create_app
from flaggery.http.app import FlaggeryApp
from flaggery.settings import STREAM_HEADROOM, Settings, SettingsError
from flaggery.stream.send_watch import SendWatch, default_stream_limit
from tests.http.raw_asgi import first_status, requesting

STREAMS = ("/v1/stream", "/ofrep/v1/events", "/ui/stream")


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[FlaggeryApp]:
    settings = Settings(db_url=db_url, db_auto_upgrade=False, admin_mode=True, max_streams=2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.mark.parametrize("third", STREAMS)
async def test_streams_beyond_the_limit_are_refused(app: FlaggeryApp, third: str) -> None:
    first, second = (path for path in STREAMS if path != third)
    async with contextlib.AsyncExitStack() as streams:
        for path in (first, second):
            started = await streams.enter_async_context(requesting(app, "GET", path, []))
            assert (await asyncio.wait_for(started, 10))[0] == 200, path
        status, headers = await first_status(app, "GET", third, [])
        assert status == 503 and int(headers[b"retry-after"]) > 0
        assert (await first_status(app, "GET", "/healthz", []))[0] == 200
        assert (await first_status(app, "GET", "/v1/features", []))[0] == 200
    # The streams ended: their places are free again.
    async with requesting(app, "GET", third, []) as started:
        assert (await asyncio.wait_for(started, 10))[0] == 200


def test_the_default_keeps_half_the_descriptors() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert default_stream_limit() == min(soft // 2, 100_000)
    assert SendWatch().limit == default_stream_limit()
    assert SendWatch(limit=3).limit == 3


@pytest.mark.parametrize("value", ["0", "-1", "x", "10000000"])
def test_the_setting_is_a_positive_count(value: str) -> None:
    with pytest.raises(SettingsError, match="FLAGGERY_MAX_STREAMS"):
        Settings.from_env({"FLAGGERY_MAX_STREAMS": value})


def test_a_limit_without_headroom_is_refused_at_start() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    Settings(max_streams=max(1, soft - STREAM_HEADROOM)).check_startup()
    with pytest.raises(SettingsError, match=r"FLAGGERY_MAX_STREAMS .* \(ulimit -n\)"):
        Settings(max_streams=soft - STREAM_HEADROOM + 1).check_startup()
