"""A follower that may lag its source says so in every OFREP answer (issue 18, item 11), as
flagd does: reason STALE, the reason it would have had in ``resolutionReason``, the same
variant and value; the bulk ETag changes with it, and both come back when it is current."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from flaggery.http import create_app
from flaggery.settings import Settings
from tests.http.helpers import ok
from tests.scripted_upstream import Exchange, Request, ScriptedState, scripted_upstream, state_of

SINGLE = "/ofrep/v1/evaluate/flags/f"
BULK = "/ofrep/v1/evaluate/flags"
CONTEXT = {"context": {"targetingKey": "1"}}


@contextlib.asynccontextmanager
async def _edge(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An edge server (no database) following ``url``, in process."""
    app = create_app(Settings(upstream_url=url, admin_mode=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def _until_stale(client: httpx.AsyncClient, stale: bool) -> None:
    async with asyncio.timeout(5):
        while ok(await client.get("/readyz"))["stale"] is not stale:
            await asyncio.sleep(0.05)


async def test_a_stale_edge_answers_stale_and_then_current_again() -> None:
    async with scripted_upstream() as upstream:
        script = ScriptedState(upstream)
        async with _edge(upstream.url) as edge:
            await _until_stale(edge, False)
            fresh = ok(await edge.post(SINGLE, json=CONTEXT))
            assert (fresh["reason"], fresh["variant"], fresh["value"]) == ("STATIC", "A", "A")
            etag = (
                ok(await edge.post(BULK, json=CONTEXT)).get("flags")
                and (await edge.post(BULK, json=CONTEXT)).headers["etag"]
            )

            async def refused(_request: Request, exchange: Exchange) -> None:
                await exchange.respond(503, {}, b"{}")

            upstream.routes["/v1/stream"] = refused  # the upstream goes away
            await script.events.put(("end", 0, ""))
            await _until_stale(edge, True)
            stale = ok(await edge.post(SINGLE, json=CONTEXT))
            assert (stale["reason"], stale["variant"], stale["value"]) == ("STALE", "A", "A")
            assert stale["metadata"]["resolutionReason"] == "STATIC"
            bulk = await edge.post(BULK, json=CONTEXT, headers={"If-None-Match": etag})
            assert bulk.status_code == 200 and bulk.headers["etag"] != etag
            assert {flag["reason"] for flag in bulk.json()["flags"]} == {"STALE"}

            upstream.routes["/v1/stream"] = script.stream  # back
            await _until_stale(edge, False)
            assert ok(await edge.post(SINGLE, json=CONTEXT))["reason"] == "STATIC"
            again = await edge.post(BULK, json=CONTEXT, headers={"If-None-Match": etag})
            assert again.status_code == 304


async def test_an_edge_whose_first_snapshot_does_not_build_retries_slowly() -> None:
    """Until the upstream sends a state that builds: 503 saying why, and no download loop (the
    quick schedule downloaded the whole snapshot about every 0.1-2 s)."""
    async with scripted_upstream() as upstream:
        script = ScriptedState(upstream)
        script.state = state_of(2, bucket_of_2=7)
        async with _edge(upstream.url) as edge:
            await asyncio.sleep(2.0)
            assert upstream.requests["/v1/snapshot"] == 1
            ready = await edge.get("/readyz")
            assert ready.status_code == 503 and "does not build" in ready.text
