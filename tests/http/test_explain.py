"""GET /v1/subjects/{id}/explain: the engine's explanation over REST, served from memory."""

from __future__ import annotations

import httpx

from tests.http.helpers import fails, ok, seed_basics


async def test_explain_names_each_source(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/features/g"), 201)
    ok(await client.post("/v1/features/g/variants/on"), 201)
    ok(await client.post("/v1/features/g/rollout", params={"variant": "on"}), 201)
    ok(await client.put("/v1/features/g/rollout", params={"proportion": 1}))
    ok(await client.post("/v1/groups/early"), 201)
    ok(await client.post("/v1/groups/late"), 201)
    for group, variant in (("early", "A"), ("late", "B")):
        ok(await client.post(f"/v1/groups/{group}/subjects/2"))
        ok(await client.post(f"/v1/groups/{group}/overrides/f", params={"variant": variant}))
    explained = ok(await client.get("/v1/subjects/2/explain"))
    assert explained["features"] == {
        "f": {"variant": "B", "source": "override", "group": "late"},  # the last joined wins
        "g": {"variant": "on", "source": "rollout", "proportion": 1.0, "key_share": 1.0},
    }
    assert explained["groups"] == ["early", "late"]
    assert explained["revision"] == ok(await client.get("/v1/revision"))["snapshot_revision"]
    flags = ok(await client.get("/v1/subjects/2/flags"))["flags"]
    assert flags == {f: why["variant"] for f, why in explained["features"].items()}
    assert ok(await client.get("/v1/subjects/1/explain"))["features"]["f"] == {
        "variant": "A",
        "source": "default",
    }


async def test_explain_refuses_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    fails(await client.get("/v1/subjects/77/explain"), 404, "SubjectNotFound")
    fails(await client.get("/v1/subjects/x/explain"), 422, "RequestValidationError")
