"""The remote client's cache tells the truth (issue 18, items 12-14), against a scripted server
(tests/scripted_upstream.py): an answer in flight when the stream drops its subject is not
cached; an A/B test starting or ending drops every answer; a 200 that is not flags JSON falls
back to the last-known answer; a stream that closes at once does not make the client spin."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from flaggery.client import AsyncFlaggeryClient, ServerUnavailable
from flaggery.engine.model import Change, Subject, SubjectFact
from tests.live.helpers import eventually
from tests.scripted_upstream import Exchange, Request, Upstream, scripted_upstream

FLAGS = "/v1/subjects/1/flags"


class _Server:
    """Answers subject 1's flags with ``body`` (after ``gate``, if set) and keeps one stream
    open that sends what the test puts in ``events``."""

    def __init__(self, upstream: Upstream) -> None:
        self.body = b'{"flags":{"f":"A"}}'
        self.gate: asyncio.Event | None = None
        self.events: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()
        self.resumed_from: str | None = None
        upstream.routes[FLAGS] = self.flags
        upstream.routes["/v1/stream"] = self.stream

    async def flags(self, _request: Request, exchange: Exchange) -> None:
        body = self.body  # what the snapshot said when the request arrived
        if self.gate is not None:
            await self.gate.wait()
        await exchange.respond(200, {"content-type": "application/json"}, body)

    async def stream(self, request: Request, exchange: Exchange) -> None:
        self.resumed_from = request.headers.get("last-event-id")
        stream = await exchange.open_stream({"x-flaggery-revision": "1"})
        await stream.raw(": open\r\n\r\n")
        while (event := await self.events.get())[0] != "end":  # "end": close the stream
            await stream.send(*event)


def _subject_change(revision: int, subject_id: int) -> str:
    fact = SubjectFact(subject_id, Subject(weight=2, bucket=0))
    return msgspec.json.encode(Change(revision, "set_weight", (fact,))).decode()


async def _connected(client: AsyncFlaggeryClient, server: _Server, revision: int) -> None:
    await server.events.put(("change", revision, _subject_change(revision, 99)))
    await eventually(lambda: client.revision == revision)


async def test_an_answer_in_flight_when_its_subject_changes_is_not_cached() -> None:
    async with scripted_upstream() as upstream:
        server = _Server(upstream)
        async with AsyncFlaggeryClient(upstream.url, cache_ttl=60) as client:
            await _connected(client, server, 5)
            server.gate = asyncio.Event()
            in_flight = asyncio.ensure_future(client.flags(1))
            await eventually(lambda: upstream.requests[FLAGS] == 1)
            server.body = b'{"flags":{"f":"B"}}'  # the kill switch lands on the server ...
            await server.events.put(("change", 6, _subject_change(6, 1)))  # ... and the stream
            await eventually(lambda: client.revision == 6)
            server.gate.set()  # now the old answer arrives
            assert (await in_flight).flags == {"f": "A"}  # what the server said, once
            server.gate = None
            assert (await client.flags(1)).flags == {"f": "B"}
            assert upstream.requests[FLAGS] == 2


async def test_a_schedule_event_drops_every_answer_and_unknown_events_none() -> None:
    async with scripted_upstream() as upstream:
        server = _Server(upstream)
        async with AsyncFlaggeryClient(upstream.url, cache_ttl=60) as client:
            await _connected(client, server, 5)
            assert (await client.flags(1)).flags == {"f": "A"}
            await server.events.put(("heartbeat", 5, "{}"))  # a newer server's event type
            await _connected(client, server, 6)
            assert (await client.flags(1)).flags == {"f": "A"}
            assert upstream.requests[FLAGS] == 1  # still cached
            server.body = b'{"flags":{"f":"B"}}'
            await server.events.put(("schedule", 6, '{"revision":6,"reason":"t started"}'))
            await eventually(lambda: client.revision == 6)
            await _connected(client, server, 7)
            assert (await client.flags(1)).flags == {"f": "B"}

            await server.events.put(("end", 0, ""))  # a new stream resumes after revision 7
            await eventually(lambda: upstream.requests["/v1/stream"] == 2)
            assert server.resumed_from == "7"


async def test_a_200_that_is_not_flags_json_serves_the_last_known_answer() -> None:
    async with scripted_upstream() as upstream:
        server = _Server(upstream)
        async with AsyncFlaggeryClient(upstream.url, follow=False, cache_ttl=0.1) as client:
            assert (await client.flags(1)).stale is False
            server.body = b"<html>Sign in to the hotel wifi</html>"
            await asyncio.sleep(0.2)  # the fresh answer expires; the last-known one stays
            answer = await client.flags(1)
            assert (answer.flags, answer.stale) == ({"f": "A"}, True)
            assert answer.reason is not None and "not flags JSON" in answer.reason
            upstream.routes["/v1/subjects/2/flags"] = server.flags
            with pytest.raises(ServerUnavailable, match="not flags JSON"):
                await client.flags(2)


async def test_a_stream_closed_at_once_does_not_make_the_client_spin() -> None:
    async with scripted_upstream() as upstream:

        async def closed_at_once(_request: Request, exchange: Exchange) -> None:
            stream = await exchange.open_stream()
            await stream.raw(": open\r\n\r\n")  # the server's opening, then the proxy closes

        upstream.routes["/v1/stream"] = closed_at_once
        async with AsyncFlaggeryClient(upstream.url):
            await asyncio.sleep(2.0)
        # 0.05-0.1 s, then doubling: at most 6 attempts in 2 s (about 25 before).
        assert 1 <= upstream.requests["/v1/stream"] <= 7
