"""The admin server's own deliverer (issue 22): a write over REST reaches a real receiver on
loopback from the background task, and a receiver that does not answer delays no write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from tests.hooks.receiver import receiver
from tests.http.conftest import MakeClient
from tests.http.helpers import ok

SECRET = "s3cret-s3cret-s3cret-s3cret"
WAIT_SECONDS = 20.0


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the background deliverer (a real task, not a clock) to make ``condition``
    true; fail after WAIT_SECONDS."""
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_slow_receiver_delays_no_write(make_client: MakeClient) -> None:
    client = await make_client(webhook_allow_loopback=True)
    async with receiver() as target:
        target.hold = asyncio.Event()
        hook = {"url": target.url, "secret": SECRET}
        ok(await client.post("/v1/webhooks/audit", json=hook), 201)
        ok(await client.post("/v1/features/a"), 201)
        await until(lambda: len(target.received) == 1)  # held: the receiver does not answer
        async with asyncio.timeout(5):  # writes go on while the delivery hangs
            for name in ("b", "c"):
                ok(await client.post(f"/v1/features/{name}"), 201)
        head = int(ok(await client.get("/v1/revision"))["revision"])
        assert len(target.received) == 1
        target.hold.set()
        await until(lambda: len(target.accepted) == 3)
        revisions = [json.loads(r.body)["revision"] for r in target.accepted]
        assert revisions == [head - 2, head - 1, head]
        names = [json.loads(r.body)["facts"][0]["name"] for r in target.accepted]
        assert names == ["a", "b", "c"]
