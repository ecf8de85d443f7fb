"""The admin server's applier: applies what is due every look, and an outage is one line when
it starts and one when it ends, not a line a second."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from flaggery.errors import DatabaseUnavailable
from flaggery.live.applier import apply_forever
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.repository import AsyncFlaggery


class _Store:
    """Fails three looks, then applies one schedule, then nothing."""

    def __init__(self) -> None:
        self.looks = 0
        self.done = asyncio.Event()

    async def apply_due(self) -> list[str]:
        self.looks += 1
        if self.looks <= 3:
            raise DatabaseUnavailable("The database is unreachable (refused). Retry later.")
        if self.looks == 5:
            self.done.set()
        return ["schedule:launch"] if self.looks == 4 else []


async def test_an_outage_is_logged_once_and_its_end_too(caplog: pytest.LogCaptureFixture) -> None:
    store = _Store()
    caplog.set_level(logging.INFO, logger="flaggery.live.applier")
    task = asyncio.create_task(apply_forever(cast(AsyncFlaggery, store), interval=0.01))
    try:
        async with asyncio.timeout(10):
            await store.done.wait()
    finally:
        await cancel_and_wait(task)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0][0] == "WARNING" and "unreachable" in lines[0][1]
    assert [level for level, _ in lines] == ["WARNING", "INFO", "INFO"]
    assert lines[2][1] == "Applied due steps of schedule:launch"
