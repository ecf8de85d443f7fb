"""The lifecycle routes: stop and delete A/B tests, remove rollouts, retire features, and the
rollout update as one revision."""

from __future__ import annotations

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import OK, fails, ok, seed_basics

TEST = {
    "name": "t",
    "end": "2099-01-01",
    "groups": [{"name": "a", "variants": {"f": "A"}}, {"name": "b", "variants": {"f": "B"}}],
}


async def revision(client: httpx.AsyncClient) -> int:
    return int(ok(await client.get("/v1/revision"))["revision"])


async def test_rollout_variant_and_proportion_are_one_revision(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/features/f/rollout", params={"variant": "A"}), 201)
    before = await revision(client)
    params: dict[str, str | float] = {"variant": "B", "proportion": 0.5}
    assert ok(await client.put("/v1/features/f/rollout", params=params)) == OK
    assert await revision(client) == before + 1
    rollout = ok(await client.get("/v1/features/f/rollout"))
    assert (rollout["variant"], rollout["proportion"]) == ("B", 0.5)
    bad_variant: dict[str, str | float] = {"variant": "Z", "proportion": 0.9}
    fails(await client.put("/v1/features/f/rollout", params=bad_variant), 404, "VariantNotFound")
    bad_share: dict[str, str | float] = {"variant": "A", "proportion": 2}
    fails(
        await client.put("/v1/features/f/rollout", params=bad_share),
        400,
        "InvalidRolloutProportion",
    )
    assert await revision(client) == before + 1
    assert ok(await client.delete("/v1/features/f/rollout")) == OK
    fails(await client.get("/v1/features/f/rollout"), 404, "RolloutNotFound")
    fails(await client.delete("/v1/features/f/rollout"), 404, "RolloutNotFound")


async def test_start_now_stop_delete_and_retire(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    assert ok(await client.post("/v1/abtests", json={"test": TEST}), 201) == OK
    fails(await client.delete("/v1/abtests/t"), 409, "AbTestIsLive")
    fails(await client.delete("/v1/features/f"), 400, "FeatureHasChildren")
    clock.advance(minutes=1)
    assert ok(await client.post("/v1/abtests/t/stop")) == OK
    fails(await client.post("/v1/abtests/t/stop"), 409, "AbTestNotLive")
    test = ok(await client.get("/v1/abtests/t"))["test"]
    assert all(group["buckets"] for group in test["groups"])
    assert ok(await client.delete("/v1/features/f/variants/B")) == OK  # only the ended test used it
    assert ok(await client.delete("/v1/features/f")) == OK
    fails(await client.get("/v1/features/f"), 404, "FeatureNotFound")
    assert ok(await client.get("/v1/subjects/1/flags")) == {"flags": {}}
    assert ok(await client.delete("/v1/abtests/t")) == OK
    fails(await client.delete("/v1/abtests/t"), 404, "AbTestNotFound")
    fails(await client.post("/v1/abtests/t/stop"), 404, "AbTestNotFound")


async def test_a_start_far_in_the_past_is_refused(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    old = TEST | {"start": "2000-01-01"}
    message = fails(await client.post("/v1/abtests", json={"test": old}), 400, "ValidationError")
    assert "in the past" in message
