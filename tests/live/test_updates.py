"""The Evaluator's one subscription API (`subscribe`, `updates`): every swap in revision order,
A/B-test boundaries and staleness as updates without entries, unsubscribing, and no reference
kept to a subscriber once it is gone."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from datetime import timedelta

import pytest

from flaggery.live.evaluator import Evaluator
from flaggery.live.updates import Updates
from flaggery.store.replica import Replica
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subscribers import Update
from tests.engine.strategies import make_state
from tests.fakes import FakeClock
from tests.live.helpers import eventually, seed


class Recorder:
    """A subscriber that keeps what it hears (a class, so a weak reference can watch it)."""

    def __init__(self) -> None:
        self.updates: list[Update] = []

    def __call__(self, update: Update) -> None:
        self.updates.append(update)


async def test_subscribers_hear_every_revision_in_order_until_they_unsubscribe(
    db_url: str, clock: FakeClock
) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        ev = Evaluator.from_db_url(db_url, clock=clock)
        recorder = Recorder()
        unsubscribe = ev.subscribe(recorder)  # before start: the first load is heard too
        async with ev:
            first = ev.revision
            for share in (0.25, 0.5, 0.75):
                await store.set_rollout_proportion("checkout", share)
            await store.add_subject(1000, 2)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            last = ev.revision

            loaded, *patched = recorder.updates
            assert (loaded.revision, loaded.changes, loaded.reason) == (first, None, "full load")
            assert not loaded.stale
            entries = [change.revision for u in patched for change in u.changes or ()]
            assert entries == list(range(first + 1, last + 1)), "each entry once, in order"
            assert [u.revision for u in patched if u.changes] == sorted(
                {u.revision for u in patched if u.changes}
            )
            assert recorder.updates[-1].snapshot is ev.snapshot

            unsubscribe()
            unsubscribe()  # idempotent
            heard = len(recorder.updates)
            await store.set_rollout_proportion("checkout", 1.0)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            assert len(recorder.updates) == heard

            watched = weakref.ref(recorder)
            del recorder, loaded, patched
            gc.collect()
            assert watched() is None, "the evaluator still holds a removed subscriber"


async def test_updates_iterate_the_latest_state_and_end_with_the_block(
    db_url: str, clock: FakeClock
) -> None:
    async with (
        AsyncFlaggery.from_db_url(db_url, clock=clock) as store,
        Evaluator.from_db_url(db_url, clock=clock) as ev,
    ):
        await seed(store)
        with ev.updates() as updates:
            await store.add_subject(1000, 2)
            written = await store.revision()
            update = await asyncio.wait_for(anext(updates), 5)
            while update.revision < written:  # earlier writes of the seed may come first
                update = await asyncio.wait_for(anext(updates), 5)
            assert update.revision == written and update.snapshot.subject(1000).weight == 2
            waiting = asyncio.ensure_future(anext(updates))
            await asyncio.sleep(0)
        with pytest.raises(StopAsyncIteration):  # leaving the block ends a waiting iteration
            await asyncio.wait_for(waiting, 5)
        watched = weakref.ref(updates)
        del updates, waiting
        gc.collect()
        assert watched() is None, "the evaluator still holds a closed Updates"


async def test_an_abtest_boundary_is_an_update_without_entries(
    db_url: str, clock: FakeClock
) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        start = clock.now + timedelta(hours=1)
        groups = {"a": {"checkout": "new"}, "b": {"checkout": "new"}}
        await store.add_abtest("t", start, start + timedelta(hours=1), groups)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            recorder = Recorder()
            ev.subscribe(recorder)
            before = ev.snapshot
            clock.advance(hours=1)
            await eventually(lambda: bool(recorder.updates))
            (update,) = recorder.updates
            assert update.changes == () and update.revision == before.revision
            assert update.snapshot is not before and update.snapshot is ev.snapshot


async def test_staleness_moving_is_an_update_without_entries(clock: FakeClock) -> None:
    replica = Replica(None, clock)
    recorder = Recorder()
    replica.subscribers.add(recorder)
    replica.mark_disconnected()  # nothing loaded yet: nothing to be stale about
    await replica.install(make_state(revision=3), "snapshot from upstream")
    replica.mark_current()  # already current: no news
    replica.mark_disconnected()
    replica.mark_disconnected()
    replica.mark_current()
    heard = [(u.revision, u.changes, u.reason, u.stale) for u in recorder.updates]
    assert heard == [
        (3, None, "snapshot from upstream", False),
        (3, (), None, True),
        (3, (), None, False),
    ]


async def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    replica = Replica(None, clock)

    def broken(update: Update) -> None:
        raise ValueError("boom")

    recorder = Recorder()
    replica.subscribers.add(broken)
    replica.subscribers.add(recorder)
    with caplog.at_level(logging.ERROR, logger="flaggery.store.subscribers"):
        await replica.install(make_state(revision=1), "full load")
    assert [u.revision for u in recorder.updates] == [1]
    assert "A snapshot subscriber failed on revision 1" in caplog.text


async def test_a_slow_consumer_gets_the_latest_update_only(clock: FakeClock) -> None:
    replica = Replica(None, clock)
    with Updates(replica.subscribers) as updates:
        for revision in (1, 2, 3):
            await replica.install(make_state(revision=revision), "full load")
        assert (await anext(updates)).revision == 3
        assert len(replica.subscribers) == 1
    assert len(replica.subscribers) == 0
    with pytest.raises(RuntimeError, match="Enter"):
        await anext(Updates(replica.subscribers))
