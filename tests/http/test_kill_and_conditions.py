"""The kill switch over REST, OFREP and the dashboard, and conditional writes: REST
``If-Match`` (412 with the envelope) and dashboard forms carrying their revision, on SQLite and
PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from flaggery.errors import EntityChanged
from flaggery.http.endpoint import if_match_revision
from flaggery.http.errors import RequestValidationError
from tests.http.conftest import MakeClient
from tests.http.helpers import OK, fails, ok, seed_basics
from tests.http.test_ui import csrf_of

OFREP = "/ofrep/v1/evaluate/flags/"


async def _killable(client: httpx.AsyncClient) -> None:
    """f: default A, B rolled out to everyone, group g (subject 1) overriding to A."""
    await seed_basics(client)
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 1}))
    ok(await client.post("/v1/groups/g"), 201)
    ok(await client.post("/v1/groups/g/overrides/f", params={"variant": "A"}))
    ok(await client.post("/v1/groups/g/subjects/1"))


async def _flags(client: httpx.AsyncClient) -> dict[int, str]:
    return {i: ok(await client.get(f"/v1/subjects/{i}/flags"))["flags"]["f"] for i in range(1, 9)}


async def test_kill_and_unkill_over_rest(make_client: MakeClient) -> None:
    client = await make_client()
    await _killable(client)
    before = await _flags(client)
    assert set(before.values()) == {"A", "B"}
    assert ok(await client.post("/v1/features/f/kill")) == OK
    assert set((await _flags(client)).values()) == {"__DISABLE__"}
    assert ok(await client.get("/v1/features/f"))["killed"] is True
    explained = ok(await client.get("/v1/subjects/1/explain"))["features"]["f"]
    assert explained == {"variant": "__DISABLE__", "source": "killed"}
    for key in ("1", "999"):  # a registered subject and an unregistered one
        answer = ok(await client.post(OFREP + "f", json={"context": {"targetingKey": key}}))
        assert (answer["reason"], answer["variant"]) == ("DISABLED", "__DISABLE__")
        assert answer["metadata"]["source"] == "killed" and "value" not in answer
    replica = await make_client(admin_mode=False)  # a fresh load says the same
    assert set((await _flags(replica)).values()) == {"__DISABLE__"}
    assert ok(await client.delete("/v1/features/f/kill")) == OK
    assert await _flags(client) == before
    assert ok(await client.get("/v1/features/f"))["killed"] is False
    fails(await client.post("/v1/features/nope/kill"), 404, "FeatureNotFound")


async def test_if_match_refuses_a_write_to_a_changed_entity(make_client: MakeClient) -> None:
    """Admin A reads the rollout at revision r; admin B fires the kill switch; A's rollout
    change made on condition of r is refused with 412 and what changed; nothing is written."""
    client = await make_client()
    await _killable(client)
    seen = ok(await client.get("/v1/revision"))["revision"]
    killed = await client.post("/v1/features/f/kill")
    assert killed.status_code == 200
    stale = await client.put(
        "/v1/features/f/rollout", params={"proportion": 0.3}, headers={"If-Match": f'"{seen}"'}
    )
    message = fails(stale, 412, "EntityChanged")
    assert f"revision {int(killed.headers['x-flaggery-revision'])} kill_switch" in message
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 1.0
    # A change to another entity since does not count; the current revision passes.
    now = int(killed.headers["x-flaggery-revision"])
    ok(await client.post("/v1/features/other"), 201)
    fresh = await client.put(
        "/v1/features/f/rollout", params={"proportion": 0.5}, headers={"If-Match": f'"{now}"'}
    )
    assert ok(fresh) == OK
    # A group's membership is not its definition: an override change still goes through.
    group_seen = int(fresh.headers["x-flaggery-revision"])
    ok(await client.post("/v1/groups/g/subjects/2"))
    headers = {"If-Match": f'"{group_seen}"'}
    ok(await client.post("/v1/groups/g/overrides/f", params={"variant": "B"}, headers=headers))
    stale_group = await client.delete("/v1/groups/g", headers=headers)
    assert "add_group_override" in fails(stale_group, 412, "EntityChanged")


async def test_if_match_is_refused_where_it_would_not_be_checked(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    await seed_basics(client)
    weak = await client.post("/v1/features/f/kill", headers={"If-Match": 'W/"1"'})
    fails(weak, 412, "EntityChanged")
    future = await client.post("/v1/features/f/kill", headers={"If-Match": '"999999"'})
    assert "after the database's latest revision" in fails(future, 400, "ValidationError")
    garbage = await client.post("/v1/features/f/kill", headers={"If-Match": '"abc"'})
    fails(garbage, 422, "RequestValidationError")
    unchecked = await client.put("/v1/subjects/1", params={"weight": 3}, headers={"If-Match": "*"})
    assert "does not take If-Match" in fails(unchecked, 422, "RequestValidationError")
    assert ok(await client.get("/v1/subjects/1"))["weight"] == 1
    assert ok(await client.post("/v1/features/f/kill", headers={"If-Match": "*"})) == OK


def test_if_match_values() -> None:
    assert if_match_revision([]) is None
    assert if_match_revision(['"12"']) == 12
    assert if_match_revision(["12"]) == 12
    assert if_match_revision(['"3", "12"', '"7"']) == 12  # one list over several lines
    assert if_match_revision(['"3", *']) is None
    assert if_match_revision(['W/"4", "5"']) == 5
    with pytest.raises(EntityChanged):
        if_match_revision(['W/"4"'])
    for bad in ('"-1"', '"1.5"', '"²"', '"' + "9" * 19 + '"', '"12'):
        with pytest.raises(RequestValidationError):
            if_match_revision([bad])


async def test_a_stale_dashboard_form_is_refused_with_what_changed(
    make_client: MakeClient,
) -> None:
    """The issue's scenario: admin A opens the rollout form; admin B fires the kill switch and
    then turns it off; A submits 30%: refused (412), the page says what changed, nothing is
    written; the re-rendered form carries the new revision and goes through."""
    client = await make_client()
    await _killable(client)
    page = await client.get("/ui/features/f")
    csrf = csrf_of(page)
    form = {"csrf": csrf, "variant": "B", "percent": "30", "revision": _revision_of(page)}
    other = await make_client()  # admin B
    ok(await other.post("/v1/features/f/kill"))
    refused = await client.post("/ui/features/f/rollout", data=form)
    assert refused.status_code == 412
    assert "changed since revision" in refused.text and "kill_switch" in refused.text
    assert "Not saved" in refused.text
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 1.0
    form["revision"] = _revision_of(refused)
    assert (await client.post("/ui/features/f/rollout", data=form)).status_code == 303
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.3
    # The kill switch itself is never refused for a stale page: repeating it loses nothing.
    kill = {"csrf": csrf, "confirm": "on", "revision": form["revision"]}
    ok(await other.delete("/v1/features/f/kill"))
    assert (await client.post("/ui/features/f/kill", data=kill)).status_code == 303
    assert ok(await client.get("/v1/features/f"))["killed"] is True
    unkill = await client.post("/ui/features/f/unkill", data=kill)  # stale: refused
    assert unkill.status_code == 412 and "unkill" in unkill.text
    assert ok(await client.get("/v1/features/f"))["killed"] is True
    bad = await client.post("/ui/features/f/rollout", data={**form, "revision": "x"})
    assert bad.status_code == 400 and "revision must be a whole number" in bad.text


def _revision_of(page: httpx.Response) -> str:
    marker = 'name="revision" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


async def test_history_filters_see_removals_over_rest_and_the_dashboard(
    make_client: MakeClient,
) -> None:
    """`?feature=f` sees the rm_group that removed an override of f; `?group=g` sees the
    rm_subject of a member; the dashboard says what was removed."""
    client = await make_client()
    await _killable(client)  # group g overrides f; subject 1 is in g
    after = ok(await client.get("/v1/revision"))["revision"]
    ok(await client.delete("/v1/subjects/1"))
    ok(await client.delete("/v1/groups/g"))

    def operations(page: dict[str, list[dict[str, str]]]) -> list[str]:
        return [change["operation"] for change in page["changes"]]

    by_feature = ok(await client.get("/v1/changes", params={"after": after, "feature": "f"}))
    assert operations(by_feature) == ["rm_group"]
    by_group = ok(await client.get("/v1/changes", params={"after": after, "group": "g"}))
    assert operations(by_group) == ["rm_subject", "rm_group"]
    page = await client.get("/ui/history", params={"feature": "f"})
    assert page.status_code == 200
    assert "Group g removed with its overrides of f" in page.text
    assert "rm_subject" not in page.text
    page = await client.get("/ui/history", params={"group": "g"})
    assert "Subject 1 removed, it was in g" in page.text


async def test_the_openapi_document_names_if_match_and_412(make_client: MakeClient) -> None:
    document = ok(await (await make_client()).get("/openapi.json"))
    update = document["paths"]["/v1/features/{feature}/rollout"]["put"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in update["parameters"])
    assert "EntityChanged" in update["responses"]["412"]["description"]
    add = document["paths"]["/v1/subjects/{subject_id}"]["post"]
    assert not any(p["name"] == "If-Match" for p in add["parameters"])
    assert "412" not in add["responses"]


async def test_a_stale_group_form_is_refused(make_client: MakeClient) -> None:
    client = await make_client()
    await _killable(client)
    page = await client.get("/ui/groups/g")
    form = {"csrf": csrf_of(page), "feature": "f", "revision": _revision_of(page), "confirm": "on"}
    ok(await client.post("/v1/groups/g/subjects/2"))  # membership: the form stays valid
    ok(await (await make_client()).post("/v1/groups/g/overrides/f", params={"variant": "B"}))
    refused = await client.post("/ui/groups/g/overrides/remove", data=form)
    assert refused.status_code == 412 and "add_group_override" in refused.text
    assert ok(await client.get("/v1/groups/g"))["overrides"] == {"f": "B"}


async def test_a_read_gives_the_revision_to_send_back_as_if_match(
    make_client: MakeClient,
) -> None:
    """Read, decide, write: the GET of a feature, rollout, group or test says the revision it
    is at least as new as; sent back as If-Match, it holds until someone changes the entity."""
    client = await make_client()
    await _killable(client)
    for path in ("/v1/features/f", "/v1/features/f/rollout", "/v1/groups/g"):
        read = await client.get(path)
        assert (
            int(read.headers["x-flaggery-revision"])
            == ok(await client.get("/v1/revision"))["revision"]
        )
    read = await client.get("/v1/features/f/rollout")
    condition = {"If-Match": f'"{read.headers["x-flaggery-revision"]}"'}
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 0.5}, headers=condition))
    again = await client.put(
        "/v1/features/f/rollout", params={"proportion": 0.2}, headers=condition
    )
    assert "set_rollout" in fails(again, 412, "EntityChanged")
    assert "x-flaggery-revision" not in (await client.get("/v1/features")).headers
