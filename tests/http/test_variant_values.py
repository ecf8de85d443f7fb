"""Variant values over REST: optional body on add, PUT .../value, shown by GET /features/{f};
the flags route keeps serving names (0.2.1)."""

from __future__ import annotations

import httpx

from tests.http.helpers import OK, fails, ok, seed_basics


async def test_values_over_rest(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/features/f/variants/C", json={"value": {"limit": 5}}), 201)
    ok(await client.post("/v1/features/f/variants/D", json={}), 201)  # no value: its name
    assert ok(await client.put("/v1/features/f/variants/A/value", json={"value": 2.5})) == OK
    feature = ok(await client.get("/v1/features/f"))
    del feature["reach"], feature["reach_revision"]  # tests/http/test_feature_reach.py
    assert feature == {
        "feature_name": "f",
        "variants": ["A", "B", "C", "D"],
        "default_variant": "A",
        "values": {"A": 2.5, "C": {"limit": 5}},
        "killed": False,
    }
    assert ok(await client.get("/v1/subjects/1/flags")) == {"flags": {"f": "A"}}
    ok(await client.put("/v1/features/f/variants/A/value", json={"value": None}))
    assert ok(await client.get("/v1/features/f"))["values"] == {"C": {"limit": 5}}


async def test_bad_values_over_rest(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    value_url = "/v1/features/f/variants/A/value"
    fails(await client.put(value_url, json={"value": [1]}), 422, "RequestValidationError")
    fails(await client.put(value_url, json={"valu": 1}), 422, "RequestValidationError")
    fails(await client.put(value_url), 422, "RequestValidationError")
    fails(await client.put(value_url, content=b"{"), 422, "RequestValidationError")
    fails(await client.put(value_url, json={"value": 2**64}), 400, "ValidationError")
    fails(await client.put("/v1/features/f/variants/Z/value", json={"value": 1}), 404,
          "VariantNotFound")  # fmt: skip
    fails(await client.post("/v1/features/f/variants/E", json={"value": [1]}), 422,
          "RequestValidationError")  # fmt: skip
    assert ok(await client.get("/v1/features/f"))["variants"] == ["A", "B"]
    assert ok(await client.get("/v1/features/f"))["values"] == {}
