"""The flags and explain routes with an evaluation context (``context.NAME=VALUE`` or
``context[NAME]=VALUE``): rule groups, audiences, ETags and refusals. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.http.helpers import fails, ok, seed_basics

DACH = {"rule": [[{"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}]]}


async def _seed(client: httpx.AsyncClient) -> None:
    await seed_basics(client)  # subjects 1..8, feature f: A (default), B
    ok(await client.post("/v1/groups/dach"), 201)
    ok(await client.put("/v1/groups/dach/rule", json=DACH))
    ok(await client.post("/v1/groups/dach/overrides/f", params={"variant": "B"}))


async def test_a_context_puts_the_subject_in_the_rule_group(client: httpx.AsyncClient) -> None:
    await _seed(client)
    plain = await client.get("/v1/subjects/3/flags")
    assert ok(plain) == {"flags": {"f": "A"}}
    german = await client.get("/v1/subjects/3/flags", params={"context.country": "DE"})
    assert ok(german) == {"flags": {"f": "B"}}
    assert german.headers["etag"] != plain.headers["etag"]
    french = await client.get("/v1/subjects/3/flags", params={"context.country": "FR", "x": "1"})
    assert ok(french) == {"flags": {"f": "A"}}
    deep_object = await client.get("/v1/subjects/3/flags", params={"context[country]": "AT"})
    assert ok(deep_object) == {"flags": {"f": "B"}}
    cached = await client.get(
        "/v1/subjects/3/flags",
        params={"context.country": "AT"},
        headers={"If-None-Match": german.headers["etag"]},
    )
    assert cached.status_code == 304
    missing = await client.get("/v1/subjects/99/flags", params={"context.country": "DE"})
    fails(missing, 404, "SubjectNotFound")


async def test_a_rule_on_user_id_sees_the_subject_id(client: httpx.AsyncClient) -> None:
    await _seed(client)
    rule = {"rule": [[{"contextName": "userId", "operator": "IN", "values": ["5"]}]]}
    ok(await client.put("/v1/groups/dach/rule", json=rule))
    any_context = {"context.plan": "pro"}
    assert ok(await client.get("/v1/subjects/5/flags", params=any_context)) == {"flags": {"f": "B"}}
    assert ok(await client.get("/v1/subjects/4/flags", params=any_context)) == {"flags": {"f": "A"}}


async def test_an_audience_serves_only_its_group(client: httpx.AsyncClient) -> None:
    await _seed(client)
    ok(await client.delete("/v1/groups/dach/overrides/f"))
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 1, "audience": "dach"}))
    assert ok(await client.get("/v1/subjects/2/flags")) == {"flags": {"f": "A"}}
    german = {"context.country": "DE"}
    assert ok(await client.get("/v1/subjects/2/flags", params=german)) == {"flags": {"f": "B"}}


async def test_explain_names_the_rule_group_and_its_constraint_set(
    client: httpx.AsyncClient,
) -> None:
    await _seed(client)
    plain = ok(await client.get("/v1/subjects/3/explain"))
    assert "rule_groups" not in plain and plain["features"]["f"]["source"] == "default"
    explained = ok(await client.get("/v1/subjects/3/explain", params={"context.country": "AT"}))
    assert explained["rule_groups"] == {"dach": 0}
    assert explained["groups"] == ["dach"]
    assert explained["features"]["f"] == {
        "variant": "B",
        "source": "override",
        "group": "dach",
        "rule_set": 0,
    }


async def test_a_bad_context_parameter_is_a_422(client: httpx.AsyncClient) -> None:
    await _seed(client)
    bad_name = await client.get("/v1/subjects/3/flags", params={"context.1x": "DE"})
    fails(bad_name, 422, "RequestValidationError")
    assert "'context.1x'" in bad_name.json()["exception"]["message"]
    twice = await client.get("/v1/subjects/3/flags?context.country=DE&context.country=AT")
    fails(twice, 422, "RequestValidationError")
    both_ways = await client.get("/v1/subjects/3/flags?context.country=DE&context[country]=AT")
    fails(both_ways, 422, "RequestValidationError")


async def test_a_context_puts_any_targeting_key_in_the_rule_group(
    client: httpx.AsyncClient,
) -> None:
    await _seed(client)
    path = "/v1/keys/visitor%2F7/flags"
    assert ok(await client.get(path)) == {"flags": {"f": "A"}}
    assert ok(await client.get(path, params={"context.country": "DE"})) == {"flags": {"f": "B"}}
    assert ok(await client.get(path, params={"context.country": "FR"})) == {"flags": {"f": "A"}}
    explained = ok(
        await client.get("/v1/keys/visitor%2F7/explain", params={"context.country": "AT"})
    )
    assert explained["features"]["f"]["source"] == "override"
    assert explained["features"]["f"]["group"] == "dach"
    bad_name = await client.get(path, params={"context.1x": "DE"})
    assert bad_name.status_code == 422
