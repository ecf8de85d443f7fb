"""The stream's fan-out and resume logic (issue 11, item 3), without HTTP or a database: one
event per revision in order, resumes from the backlog or the change log, a reload event when
neither reaches back, and a client that falls behind is dropped, not buffered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from flaggery.engine.model import Change, Feature, FeatureFact, ReloadFact
from flaggery.stream import broadcast as broadcast_module
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.events import StreamEvent
from flaggery.stream.follow import Replay, follow


def _change(revision: int) -> Change:
    name = f"f{revision}"
    return Change(revision, "add_feature", (FeatureFact(name, Feature(name, ())),))


async def _take(events: AsyncIterator[StreamEvent], count: int) -> list[StreamEvent]:
    return [await anext(events) for _ in range(count)]


def _ids(events: Sequence[StreamEvent]) -> list[tuple[int, str]]:
    return [(event.revision, event.kind) for event in events]


async def test_one_event_per_revision_with_the_facts_to_patch() -> None:
    broadcast = Broadcast()
    broadcast.on_swap(3, None, "full load")
    stream = follow(broadcast, None, None)
    pending = asyncio.ensure_future(_take(stream, 3))
    await asyncio.sleep(0)  # subscribed
    broadcast.on_swap(5, [_change(4), _change(5)], None)
    broadcast.on_swap(6, [Change(6, "add_subjects", (ReloadFact(20_000),))], None)
    events = await pending
    assert _ids(events) == [(4, "change"), (5, "change"), (6, "reload")]
    data = msgspec.json.decode(events[0].data)
    assert data["revision"] == 4 and data["facts"][0]["type"] == "feature"
    assert msgspec.json.decode(events[2].data)["reason"] == "revision 6 is too large to patch"
    await stream.aclose()
    assert broadcast.clients == 0


async def test_a_backlog_that_starts_with_a_reload_replays_it() -> None:
    broadcast = Broadcast()
    broadcast.on_swap(10, None, "full load")
    broadcast.on_swap(11, [_change(11)], None)
    stream = follow(broadcast, 4, None)
    assert _ids(await _take(stream, 2)) == [(10, "reload"), (11, "change")]
    await stream.aclose()


async def test_resume_from_the_backlog() -> None:
    broadcast = Broadcast()
    broadcast.on_swap(2, None, "full load")
    broadcast.on_swap(5, [_change(3), _change(4), _change(5)], None)
    stream = follow(broadcast, 3, None)
    assert _ids(await _take(stream, 2)) == [(4, "change"), (5, "change")]
    await stream.aclose()


async def test_resume_beyond_the_backlog_replays_the_change_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broadcast_module, "BACKLOG_EVENTS", 2)
    broadcast = Broadcast()
    broadcast.on_swap(10, [_change(r) for r in range(1, 11)], None)
    asked: list[tuple[int, int]] = []

    async def replay(after: int, upto: int) -> Sequence[Change] | None:
        asked.append((after, upto))
        return [_change(r) for r in range(after + 1, upto + 1)]

    stream = follow(broadcast, 6, replay)
    assert _ids(await _take(stream, 4)) == [(r, "change") for r in range(7, 11)]
    assert asked == [(6, 10)]
    await stream.aclose()


@pytest.mark.parametrize("replay", [None, "gone"])
async def test_a_resume_that_nothing_reaches_gets_a_reload(replay: str | None) -> None:
    broadcast = Broadcast()
    broadcast.on_swap(11, [_change(10), _change(11)], None)

    async def gone(after: int, upto: int) -> Sequence[Change] | None:
        return None

    source: Replay | None = gone if replay else None
    stream = follow(broadcast, 4, source)
    (event,) = await _take(stream, 1)
    assert _ids([event]) == [(11, "reload")]
    assert "no longer holds revision 5" in msgspec.json.decode(event.data)["reason"]
    await stream.aclose()


async def test_a_client_ahead_of_this_server_reloads() -> None:
    broadcast = Broadcast()
    broadcast.on_swap(3, None, "full load")
    stream = follow(broadcast, 9, None)
    (event,) = await _take(stream, 1)
    assert _ids([event]) == [(3, "reload")]
    await stream.aclose()


async def test_a_client_that_falls_behind_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broadcast_module, "QUEUE_EVENTS", 3)
    broadcast = Broadcast()
    broadcast.on_swap(0, None, "full load")
    slow = follow(broadcast, None, None)
    fast = follow(broadcast, None, None)
    first = asyncio.ensure_future(anext(slow))
    fast_events = asyncio.ensure_future(_take(fast, 6))
    await asyncio.sleep(0)
    for revision in range(1, 7):  # the slow client reads nothing after its first event
        broadcast.on_swap(revision, [_change(revision)], None)
        await asyncio.sleep(0.01)
    assert _ids([await first]) == [(1, "change")]
    assert len(await fast_events) == 6
    remaining = [event async for event in slow]  # ends: dropped after QUEUE_EVENTS
    assert _ids(remaining) == [(2, "change"), (3, "change"), (4, "change")]
    await fast.aclose()


async def test_a_client_that_falls_out_of_the_backlog_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broadcast_module, "BACKLOG_EVENTS", 2)
    broadcast = Broadcast()
    broadcast.on_swap(0, None, "full load")
    stream = follow(broadcast, None, None)
    pending = asyncio.ensure_future(_collect(stream))
    await asyncio.sleep(0)  # subscribed, waiting
    broadcast.on_swap(3, [_change(1), _change(2), _change(3)], None)  # 1 falls out at once
    assert await pending == []  # dropped, not resumed past the gap
    assert broadcast.clients == 0


async def _collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]
