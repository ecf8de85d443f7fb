"""OFREP's refetch events are a mapping over the process's one change stream (issue 24 §3): no
second fan-out or watchdog; every change, reload, schedule and freshness event becomes a
refetch, events already waiting are coalesced into one, and each is encoded once for every
client."""

from __future__ import annotations

import asyncio

import msgspec

from flaggery.engine.model import Change, Feature, FeatureFact
from flaggery.live.sse_lines import SseParser
from flaggery.ofrep.events import OfrepEvents
from flaggery.store.subscribers import Update
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.send_watch import SendWatch


def _change(revision: int) -> Change:
    name = f"f{revision}"
    return Change(revision, "add_feature", (FeatureFact(name, Feature(name, ())),))


class _Snapshot:
    def __init__(self, revision: int) -> None:
        self.revision = revision


def _decoded(wire: bytes) -> tuple[str | None, dict[str, object]]:
    parser = SseParser()
    for line in wire.decode().split("\r\n"):
        event = parser.feed(line)
        if event is not None:
            return event.id, msgspec.json.decode(event.data[0])
    raise AssertionError(f"no event in {wire!r}")


async def test_every_stream_event_is_one_refetch_for_every_client() -> None:
    broadcast = Broadcast()
    broadcast.on_swap(3, None, "full load")
    events = OfrepEvents()
    events.attach(broadcast, SendWatch())
    clients = [events._refetches(broadcast), events._refetches(broadcast)]
    pending = [asyncio.ensure_future(anext(client)) for client in clients]
    await asyncio.sleep(0)  # both subscribed
    broadcast.on_swap(6, [_change(4), _change(5), _change(6)], None)  # one bulk write
    first, second = await asyncio.gather(*pending)
    assert first is second  # encoded once
    event_id, data = _decoded(first)
    assert event_id == "6" and data["type"] == "refetchEvaluation" and data["etag"] == "6"
    assert isinstance(data["lastModified"], int)

    # An A/B test starting on its schedule: no new revision, but answers changed.
    snapshot, later = _Snapshot(6), _Snapshot(6)
    broadcast.on_update(Update(snapshot, None, "full load", False))  # type: ignore[arg-type]
    assert _decoded(await anext(clients[0]))[0] == "6"  # the reload
    broadcast.on_update(Update(later, (), None, False))  # type: ignore[arg-type]
    assert _decoded(await anext(clients[0]))[0] == "6"
    # The answers may lag their source (their reason turns STALE): clients refetch too.
    broadcast.on_update(Update(later, (), None, True))  # type: ignore[arg-type]
    assert _decoded(await anext(clients[0]))[0] == "6"
    assert [event.kind for event in broadcast.backlog][-3:] == ["reload", "schedule", "freshness"]
    for client in clients:
        await client.aclose()
    assert broadcast.clients == 0
