"""The replica builds a snapshot in the engine's steps and lets the event loop run between
them: requests are served while a configuration change re-resolves every view."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from flaggery.engine.steps import Steps
from flaggery.store.replica import in_steps


async def test_other_tasks_run_between_every_two_steps() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []

    def build() -> Steps[str]:
        for _ in range(4):
            seen.append(ticks)
            yield
        seen.append(ticks)
        return "built"

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        assert await in_steps(build()) == "built"
    finally:
        task.cancel()
    assert len(seen) == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_an_error_in_a_step_is_raised_to_the_caller() -> None:
    def build() -> Steps[str]:
        yield
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await in_steps(build())
