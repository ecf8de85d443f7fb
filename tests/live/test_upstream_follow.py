"""An edge never gives up, never spins and never lies about freshness (issue 18, items 8-10),
against a scripted upstream (tests/scripted_upstream.py) that answers what a real server
would not: a snapshot that does not build, a stream closed at once, unknown event types."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec

from flaggery.engine.model import Change, Feature, FeatureFact
from flaggery.live.evaluator import Evaluator
from tests.live.helpers import eventually
from tests.scripted_upstream import (
    Exchange,
    Request,
    ScriptedState,
    Upstream,
    scripted_upstream,
    state_of,
)


def _default_change(revision: int, default: str) -> str:
    fact = FeatureFact("f", Feature("f", ("A", "B"), default))
    return msgspec.json.encode(Change(revision, "set_default_variant", (fact,))).decode()


@contextlib.asynccontextmanager
async def _edge(revision: int = 1) -> AsyncIterator[tuple[Upstream, ScriptedState, Evaluator]]:
    """A scripted upstream at ``revision``, and an edge that follows it."""
    async with scripted_upstream() as upstream:
        script = ScriptedState(upstream, revision)
        async with Evaluator.from_upstream(upstream.url) as edge:
            yield upstream, script, edge


async def test_a_snapshot_that_does_not_build_keeps_the_edge_following() -> None:
    async with _edge() as (upstream, script, edge):
        await eventually(lambda: upstream.requests["/v1/stream"] == 1 and not edge.stale)
        assert edge.variants(1) == {"f": "A"}

        script.state = state_of(2, bucket_of_2=7)  # subject 2 in a bucket it does not list
        await script.events.put(("reload", 2, '{"revision":2,"reason":"restored"}'))
        await eventually(lambda: edge.build_error is not None)
        assert "revision 2 does not build" in (edge.build_error or "")
        assert (edge.revision, edge.stale, edge.variants(1)) == (1, True, {"f": "A"})

        # The upstream moves on (a kill switch, a fix): the same stream brings it.
        script.state = state_of(3, default="B")
        await script.events.put(("change", 3, _default_change(3, "B")))
        await eventually(lambda: edge.revision == 3)
        assert (edge.variants(1), edge.stale, edge.build_error) == ({"f": "B"}, False, None)
        assert upstream.requests["/v1/stream"] == 1  # never dropped


async def test_a_stream_closed_at_once_backs_off_and_is_not_current() -> None:
    async with _edge(5) as (upstream, script, edge):
        await eventually(lambda: upstream.requests["/v1/stream"] == 1 and not edge.stale)
        script.state = state_of(6, default="B")  # the upstream moves on ...

        async def closed_at_once(_request: Request, exchange: Exchange) -> None:
            stream = await exchange.open_stream({"x-flaggery-revision": "6"})  # ... behind a proxy
            await stream.raw(": open\r\n\r\n")  # the server's opening, then the proxy closes

        upstream.routes["/v1/stream"] = closed_at_once
        await script.events.put(("end", 5, ""))
        await eventually(lambda: upstream.requests["/v1/stream"] >= 2)
        await asyncio.sleep(2.0)
        # 0.05-0.1 s, then doubling: at most 6 attempts in 2 s (12 a second before).
        assert upstream.requests["/v1/stream"] <= 7
        assert (edge.revision, edge.stale) == (5, True)
        age = edge.age_seconds
        assert age is not None and age > 1.5  # not renewed by connections that failed


async def test_behind_the_upstream_is_stale_until_its_revision_arrives() -> None:
    async with _edge(5) as (upstream, script, edge):
        await eventually(lambda: upstream.requests["/v1/stream"] == 1 and not edge.stale)
        await script.events.put(("heartbeat", 6, "{}"))  # a newer upstream's event, at 6
        await eventually(lambda: edge.stale)
        assert edge.revision == 5
        await script.events.put(("change", 6, _default_change(6, "B")))
        await eventually(lambda: edge.revision == 6 and not edge.stale)


async def test_unknown_event_types_are_ignored() -> None:
    async with _edge() as (upstream, script, edge):
        await eventually(lambda: upstream.requests["/v1/stream"] == 1 and not edge.stale)
        for _ in range(20):
            await script.events.put(("heartbeat", 1, '{"revision":1}'))
        await script.events.put(("schedule", 1, '{"revision":1,"reason":"x"}'))
        await script.events.put(("change", 2, _default_change(2, "B")))
        await eventually(lambda: edge.revision == 2)
        assert upstream.requests["/v1/snapshot"] == 1  # the first load only
        assert (edge.variants(1), edge.stale) == ({"f": "B"}, False)


async def test_an_edge_is_no_fresher_than_its_upstream() -> None:
    async with _edge() as (upstream, script, edge):
        await eventually(lambda: upstream.requests["/v1/stream"] == 1 and not edge.stale)
        await script.events.put(("freshness", 1, '{"revision":1,"stale":true}'))
        await eventually(lambda: edge.stale)  # connected and current, but its upstream is not
        age = edge.age_seconds
        await script.events.put(("freshness", 1, '{"revision":1,"stale":false}'))
        await eventually(lambda: not edge.stale)
        assert age is not None and (edge.age_seconds or 0.0) < age + 0.5

        script.stale = True  # an upstream stale already when the stream starts says so
        await script.events.put(("end", 0, ""))
        await eventually(lambda: upstream.requests["/v1/stream"] == 2)
        await asyncio.sleep(0.2)
        assert edge.stale
