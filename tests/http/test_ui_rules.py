"""The dashboard's rule editor, a rollout's audience and the "try a context" box, over HTTP on
SQLite and PostgreSQL."""

from __future__ import annotations

from tests.http.conftest import MakeClient
from tests.http.helpers import ok, seed_basics
from tests.http.test_ui import csrf_of


async def test_a_rule_is_edited_row_by_row(make_client: MakeClient) -> None:
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/groups/dach"), 201)
    page = await client.get("/ui/groups/dach")
    assert "No rule: only the members above" in page.text and 'name="name-2"' in page.text
    csrf = csrf_of(page)
    rows = {
        "set-0": "1", "name-0": "country", "operator-0": "IN", "values-0": "DE\nAT\n",
        "set-1": "1", "name-1": "version", "operator-1": "SEMVER_GTE", "values-1": "2.1.0",
        "set-2": "2", "name-2": "email", "operator-2": "STR_ENDS_WITH",
        "values-2": "@example.com", "case-2": "on", "inverted-2": "on",
        "set-3": "2", "name-3": "", "operator-3": "IN", "values-3": "ignored",
    }  # fmt: skip
    saved = await client.post("/ui/groups/dach/rule", data={"csrf": csrf, **rows})
    assert saved.status_code == 303
    rule = ok(await client.get("/v1/groups/dach"))["rule"]
    assert [[(c["contextName"], c["operator"]) for c in s] for s in rule] == [
        [("country", "IN"), ("version", "SEMVER_GTE")],
        [("email", "STR_ENDS_WITH")],
    ]
    assert rule[0][0]["values"] == ["DE", "AT"] and rule[0][1]["value"] == "2.1.0"
    assert rule[1][0]["inverted"] and rule[1][0]["caseInsensitive"]
    shown = await client.get("/ui/groups/dach")
    assert "<strong>Set 2</strong>" in shown.text and 'value="version"' in shown.text

    bad = {**rows, "values-1": "v2"}
    refused = await client.post("/ui/groups/dach/rule", data={"csrf": csrf, **bad})
    assert refused.status_code == 400 and "is not a strict semantic version" in refused.text
    asked = await client.post("/ui/groups/dach/rule/remove", data={"csrf": csrf})
    assert "Remove the targeting rule of group dach?" in asked.text
    assert "rule" in ok(await client.get("/v1/groups/dach"))
    confirmed = {"csrf": csrf, "confirm": "on"}
    removed = await client.post("/ui/groups/dach/rule/remove", data=confirmed)
    assert removed.status_code == 303 and "rule" not in ok(await client.get("/v1/groups/dach"))


async def test_an_audience_is_set_with_the_rollout_and_a_context_is_tried(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/groups/dach"), 201)
    rule = [[{"contextName": "country", "operator": "IN", "values": ["DE"]}]]
    ok(await client.put("/v1/groups/dach/rule", json={"rule": rule}))
    csrf = csrf_of(await client.get("/ui/features/f"))
    form = {"csrf": csrf, "variant": "B", "percent": "100", "audience": "dach"}
    assert (await client.post("/ui/features/f/rollout", data=form)).status_code == 303
    assert ok(await client.get("/v1/features/f/rollout"))["audience"] == "dach"
    assert "Audience: only members of" in (await client.get("/ui/features/f")).text

    tried = await client.get("/ui/subjects", params={"key": "visitor-1", "context": "country=DE"})
    assert tried.status_code == 200
    assert "(by its rule, set 1)" in tried.text and "audience dach" in tried.text
    elsewhere = await client.get("/ui/subjects", params={"key": "visitor-1", "context": "x=1"})
    assert "the feature's default" in elsewhere.text and "by its rule" not in elsewhere.text
    bad_key = await client.get("/ui/subjects", params={"key": ""})
    assert bad_key.status_code == 400
