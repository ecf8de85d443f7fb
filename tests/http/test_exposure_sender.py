"""The remote client's exposures (flaggery.client.exposures) against the app: recorded
without I/O, sent in batches, kept while the server fails, dropped (and counted) when
refused."""

from __future__ import annotations

import httpx

from flaggery.client.exposures import ExposureSender
from tests.fakes import FakeClock
from tests.http.helpers import ok, seed_basics
from tests.http.test_exposures import TEST


async def test_exposures_are_sent_in_batches_and_counted(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    sender = ExposureSender(client)
    for i in range(250):
        sender.record(f"visitor-{i}", "t", "a", clock.now)
    sender.record("1", "t", "b", clock.now)
    assert sender.pending == 251
    await sender.flush()
    assert sender.pending == 0 and sender.dropped == 0
    health = ok(await client.get("/v1/abtests/t/health"))
    assert sum(p["exposures"] for p in health["populations"]) == 251


async def test_a_failing_server_keeps_the_batch_and_a_refusal_drops_it(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    answers = iter([503])

    def flaky(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers, 202), json={})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(flaky), base_url="http://x"
    ) as failing:
        sender = ExposureSender(failing)
        sender.record("1", "t", "a", clock.now)
        await sender.flush()
        assert sender.pending == 1  # 503: kept for the next try
        await sender.flush()
        assert sender.pending == 0
    refused = ExposureSender(client)
    refused.record("1", "t", "no-such-group", clock.now)
    await refused.flush()
    assert (refused.pending, refused.dropped) == (0, 1)
