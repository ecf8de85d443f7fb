"""Shutdown never hangs (issue 18, item 21): a cancellation is never lost to
``asyncio.wait_for`` (CPython issue 86296, Python 3.11), and `cancel_and_wait` is bounded and
names what did not stop."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest

import flaggery
from flaggery.live.postgres_feed import PostgresFeed
from flaggery.live.tasks import cancel_and_wait


class _Connection:
    """Enough of an asyncpg connection for PostgresFeed._follow: open, never queried."""

    def is_closed(self) -> bool:
        return False


class _Replica:
    def __init__(self) -> None:
        self.refreshes = 0

    async def refresh(self) -> bool:
        self.refreshes += 1
        return True


async def test_a_notify_landing_with_the_cancellation_does_not_keep_the_feed_running() -> None:
    replica = _Replica()
    feed = PostgresFeed("postgresql://unused", replica, check_interval=30.0)  # type: ignore[arg-type]
    task = asyncio.create_task(feed._follow(_Connection()))
    await asyncio.sleep(0.01)  # waiting for a wake-up
    feed._wake.set()  # a NOTIFY, in the same loop tick as the shutdown's cancel
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    assert done, "the cancellation was lost: the feed went on waiting for notifications"
    assert task.cancelled()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancel_and_wait_is_bounded_and_names_what_did_not_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    async def failed() -> None:
        raise RuntimeError("broken before the stop")

    task = asyncio.create_task(stubborn(), name="stubborn-loop")
    broken = asyncio.create_task(failed(), name="broken-loop")
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.ERROR, logger="flaggery.live.tasks"):
        async with asyncio.timeout(2.0):
            await cancel_and_wait(task, None, broken, timeout=0.2)
    assert "'stubborn-loop' did not stop within 0.2 s" in caplog.text
    assert "'broken-loop' had failed" in caplog.text and "broken before" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait({task})


def _wait_for_calls(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "wait_for":
            value: Any = node.value
            if isinstance(value, ast.Name) and value.id == "asyncio":
                lines.append(node.lineno)
    return lines


def test_the_package_never_waits_with_asyncio_wait_for() -> None:
    package = Path(flaggery.__file__).parent
    found = {
        str(path.relative_to(package)): lines
        for path in package.rglob("*.py")
        if (lines := _wait_for_calls(path))
    }
    assert found == {}, "use asyncio.timeout (flaggery.live.tasks says why)"
