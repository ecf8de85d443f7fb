"""The REST routes of targeting rules and audiences: shapes, status codes and refusals.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import OK, fails, ok, seed_basics

GERMANY = {"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}
NEW_APP = {"contextName": "version", "operator": "SEMVER_GTE", "value": "2.1.0"}


async def test_a_group_rule_is_put_read_and_deleted(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/beta"), 201)
    assert ok(await client.get("/v1/groups/beta")) == {
        "group_name": "beta",
        "subjects": [],
        "overrides": {},
    }
    rule = {"rule": [[GERMANY], [NEW_APP]]}
    assert ok(await client.put("/v1/groups/beta/rule", json=rule)) == OK
    shown = ok(await client.get("/v1/groups/beta"))["rule"]
    assert shown == [
        [{**GERMANY, "value": None, "inverted": False, "caseInsensitive": False}],
        [{**NEW_APP, "values": [], "inverted": False, "caseInsensitive": False}],
    ]
    # What GET shows, PUT takes back unchanged (an Unleash export has both value fields).
    assert ok(await client.put("/v1/groups/beta/rule", json={"rule": shown})) == OK
    assert ok(await client.delete("/v1/groups/beta/rule")) == OK
    assert "rule" not in ok(await client.get("/v1/groups/beta"))
    fails(await client.put("/v1/groups/nope/rule", json=rule), 404, "GroupNotFound")
    fails(await client.delete("/v1/groups/nope/rule"), 404, "GroupNotFound")


async def test_a_bad_rule_is_a_400_that_says_what_and_where(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/beta"), 201)
    before = ok(await client.get("/v1/revision"))["revision"]
    cases = [
        ({"rule": [[{**NEW_APP, "value": "v2"}]]}, "rule[0][0] ('version' SEMVER_GTE)"),
        ({"rule": [[{**GERMANY, "operator": "LIKE"}]]}, "unknown operator 'LIKE'"),
        ({"rule": [[{"contextName": "e", "operator": "REGEX", "value": "(a)\\1"}]]}, "RE2"),
        ({"rule": [[GERMANY] * 33]}, "at most 32 constraints"),
        ({"rule": [[{**GERMANY, "values": ["x"] * 10_001}]]}, "at most 10,000 values"),
        ({"rule": [[{**GERMANY, "contextname": "x"}]]}, "unknown field `contextname`"),
        ({"rules": []}, "rules"),
    ]
    for body, message in cases:
        response = await client.put("/v1/groups/beta/rule", json=body)
        assert response.status_code in (400, 422), response.text
        assert message in response.json()["exception"]["message"], response.text
    assert ok(await client.get("/v1/revision"))["revision"] == before


async def test_rollout_and_abtest_audiences(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/beta"), 201)
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    params: dict[str, str | float] = {"proportion": 0.5, "audience": "beta"}
    assert ok(await client.put("/v1/features/f/rollout", params=params)) == OK
    rollout = ok(await client.get("/v1/features/f/rollout"))
    assert (rollout["proportion"], rollout["audience"]) == (0.5, "beta")
    fails(await client.delete("/v1/groups/beta"), 400, "GroupIsUsed")
    missing = await client.put("/v1/features/f/rollout", params={"audience": "nope"})
    fails(missing, 404, "GroupNotFound")
    assert ok(await client.put("/v1/features/f/rollout", params={"audience": ""})) == OK
    assert "audience" not in ok(await client.get("/v1/features/f/rollout"))

    end = (clock.now + timedelta(days=3)).isoformat()
    test = {
        "name": "t",
        "end": end,
        "audience": "beta",
        "groups": [{"name": "a", "variants": {"f": "A"}}, {"name": "b", "variants": {"f": "B"}}],
    }
    ok(await client.post("/v1/abtests", json={"test": test}), 201)
    assert ok(await client.get("/v1/abtests/t"))["test"]["audience"] == "beta"
    assert ok(await client.put("/v1/abtests/t/audience", params={"audience": ""})) == OK
    assert "audience" not in ok(await client.get("/v1/abtests/t"))["test"]
    response = await client.put("/v1/abtests/t/audience", params={"audience": "nope"})
    fails(response, 404, "GroupNotFound")
    # "" in a new test's body is no audience, as audience= (empty) is on the routes above.
    later = {"start": (clock.now + timedelta(days=4)).isoformat(),  # after t: one at a time
             "end": (clock.now + timedelta(days=5)).isoformat()}  # fmt: skip
    ok(
        await client.post(
            "/v1/abtests", json={"test": {**test, **later, "name": "u", "audience": ""}}
        ),
        201,
    )
    assert "audience" not in ok(await client.get("/v1/abtests/u"))["test"]
