"""An A/B test starting or ending on its schedule is an event on the change stream (issue 18,
item 13): no write happens, so the revision stays, but every answer of the test's subjects may
change, and a cache of answers (the remote client) must hear of it as OFREP's clients do."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec

from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.follow import follow
from tests.fakes import FakeClock
from tests.live.helpers import seed


async def test_a_test_starting_and_ending_is_streamed(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    start, end = clock.now + timedelta(minutes=1), clock.now + timedelta(minutes=2)
    groups = {"g1": {"checkout": "old"}, "g2": {"checkout": "new"}}
    await store.add_abtest("t", start, end, groups)
    broadcast = Broadcast()
    evaluator = Evaluator(store.database)
    evaluator.subscribe(broadcast.on_update)  # as the app does: from the first load on
    async with evaluator:
        stream = follow(broadcast, evaluator.revision, None)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)  # subscribed; staleness moving publishes nothing
        assert not pending.done()
        clock.advance(minutes=1)  # the test starts: the evaluator's timer sees it within 1 s
        async with asyncio.timeout(5):
            started = await pending
        assert (started.kind, started.revision) == ("schedule", evaluator.revision)
        assert "A/B test" in msgspec.json.decode(started.data)["reason"]
        clock.advance(minutes=2)  # and ends
        async with asyncio.timeout(5):
            ended = await anext(stream)
        assert (ended.kind, ended.revision) == ("schedule", evaluator.revision)
        # A resume does not replay them: they signal a moment, not a change to patch.
        assert broadcast.backlog_after(evaluator.revision) == []
        await stream.aclose()
