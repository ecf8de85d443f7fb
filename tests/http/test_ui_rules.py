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


async def test_saving_the_form_keeps_every_constraint_and_value_as_shown(
    make_client: MakeClient,
) -> None:
    """A rule of 70 constraints (over the 64 rows the form once read) with values that have
    spaces, saved back unchanged from the page, is the same rule."""
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/groups/big"), 201)
    rule = [
        [
            {"contextName": f"a{number}_{row}", "operator": "STR_ENDS_WITH",
             "values": [" Inc", "GmbH "]}
            for row in range(size)
        ]
        for number, size in enumerate((32, 32, 6))
    ]  # fmt: skip
    ok(await client.put("/v1/groups/big/rule", json={"rule": rule}))
    before = ok(await client.get("/v1/groups/big"))["rule"]
    page = await client.get("/ui/groups/big")
    rows: dict[str, str] = {}
    for index, row in enumerate(c for constraint_set in before for c in constraint_set):
        assert f'name="name-{index}" value="{row["contextName"]}"' in page.text
        set_number = next(n for n, s in enumerate(before, start=1) if row in s)
        rows |= {
            f"set-{index}": str(set_number), f"name-{index}": row["contextName"],
            f"operator-{index}": row["operator"], f"values-{index}": "\r\n".join(row["values"]),
        }  # fmt: skip
    saved = await client.post("/ui/groups/big/rule", data={"csrf": csrf_of(page), **rows})
    assert saved.status_code == 303
    assert ok(await client.get("/v1/groups/big"))["rule"] == before


async def test_the_try_box_reads_the_key_as_the_context_s_targeting_key(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/groups/vip"), 201)
    rule = [[{"contextName": "userId", "operator": "IN", "values": ["visitor-1"]}]]
    ok(await client.put("/v1/groups/vip/rule", json={"rule": rule}))
    tried = await client.get("/ui/subjects", params={"key": "visitor-1", "context": "plan=pro"})
    assert tried.status_code == 200 and "(by its rule, set 1)" in tried.text
    other = await client.get("/ui/subjects", params={"key": "visitor-2", "context": "plan=pro"})
    assert "by its rule" not in other.text
