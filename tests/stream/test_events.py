"""The wire form of stream events: encoded once per revision, exactly what sse-starlette would
write for the same event, and read back by the replicas' SSE parser."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from flaggery.engine.model import Change, Feature, FeatureFact
from flaggery.live.sse_lines import sse_events
from flaggery.stream.events import StreamEvent, change_event, reload_event


def _events() -> list[StreamEvent]:
    name = "line\nbreak \u00e9"  # a line break and non-ASCII inside the JSON data
    change = Change(7, "add_feature", (FeatureFact(name, Feature(name, ())),))
    return [change_event(change), reload_event(8, "a gap\r\nafter 7")]


def test_the_wire_form_is_what_sse_starlette_writes() -> None:
    for event in _events():
        expected = ServerSentEvent(data=event.data, event=event.kind, id=str(event.revision))
        assert event.wire == expected.encode()


async def test_the_wire_form_reads_back_as_one_event_each() -> None:
    async def lines() -> AsyncIterator[str]:
        text = b"".join(event.wire for event in _events()).decode()
        for line in text.split("\r\n"):
            yield line

    parsed = [event async for event in sse_events(lines())]
    assert [(e.id, e.event, e.data) for e in parsed] == [
        (str(event.revision), event.kind, [event.data]) for event in _events()
    ]
