"""Setting up from the dashboard alone (issue 21): buckets with the seed's guidance, subjects
and group members pasted or uploaded, previewed, then written in one transaction; the subject
list. SQLite and PostgreSQL."""

from __future__ import annotations

from tests.http.conftest import MakeClient
from tests.http.helpers import ok
from tests.http.test_ui import csrf_of, revision


async def test_buckets_subjects_and_members_from_an_empty_database(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    page = await client.get("/ui/buckets")
    assert "about 10 buckets for a few hundred subjects, 100 beyond" in page.text
    assert 'name="amount" inputmode="numeric" required value="10"' in page.text  # suggested
    csrf = csrf_of(page)
    added = await client.post("/ui/buckets", data={"csrf": csrf, "amount": "10"})
    assert added.status_code == 303
    assert ok(await client.get("/v1/buckets"))["total_buckets"] == 10
    refused = await client.post("/ui/buckets", data={"csrf": csrf, "amount": "ten"})
    assert refused.status_code == 400 and "whole number" in refused.text

    pasted = "1\n2,5\n3 2\n"
    preview = await client.post("/ui/subjects", data={"csrf": csrf, "ids": pasted})
    assert preview.status_code == 200 and "Add 3 subjects?" in preview.text
    assert "total weight 8" in preview.text
    fail_if_written = await client.get("/v1/subjects/1")
    assert fail_if_written.status_code == 404  # a preview writes nothing
    before = await revision(client)
    done = await client.post("/ui/subjects", data={"csrf": csrf, "ids": pasted, "confirm": "on"})
    assert done.status_code == 303
    assert await revision(client) == before + 1  # one transaction
    assert ok(await client.get("/v1/subjects/2"))["weight"] == 5
    upload = {"file": ("ids.csv", b"4\n5\n6\n", "text/csv")}
    preview = await client.post("/ui/subjects", data={"csrf": csrf, "ids": ""}, files=upload)
    assert "Add 3 subjects?" in preview.text and 'value="4\n5\n6\n"' in preview.text
    again = await client.post("/ui/subjects", data={"csrf": csrf, "ids": "6\n7", "confirm": "on"})
    assert again.status_code == 303
    clash = await client.post("/ui/subjects", data={"csrf": csrf, "ids": "7\n8"})
    assert "1 of them exist already (7)" in clash.text
    refused = await client.post("/ui/subjects", data={"csrf": csrf, "ids": "7\n8", "confirm": "on"})
    assert refused.status_code == 400 and "exist" in refused.text
    assert (await client.get("/v1/subjects/8")).status_code == 404  # all or nothing
    listing = await client.get("/ui/subjects", params={"from": "2"})
    assert 'href="/ui/subjects?id=2"' in listing.text
    assert 'href="/ui/subjects?id=1"' not in listing.text
    assert "All subjects (5)" in listing.text

    ok(await client.post("/v1/groups/beta"), 201)
    members = {"csrf": csrf, "members": "1, 2 3"}
    preview = await client.post("/ui/groups/beta/members/paste", data=members)
    assert "Add 3 subjects to group beta?" in preview.text
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == []
    confirmed = await client.post("/ui/groups/beta/members/paste", data=members | {"confirm": "on"})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/ui/groups/beta"
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == [1, 2, 3]
    refused = await client.post(
        "/ui/groups/beta/members/paste", data={"csrf": csrf, "members": "3 99", "confirm": "on"}
    )
    assert refused.status_code == 400 and "Subject 3 is in group" in refused.text
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == [1, 2, 3]


async def test_signed_in_visitors_pasted_with_their_keys_keep_their_buckets(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 4}))
    ok(await client.post("/v1/subjects", json=[{"id": 1, "weight": 40}]), 201)  # bucket 1
    # The salt is random per database: read keys until one hashes to the heavy bucket 1
    # (beyond the tolerance: it falls back) and two to the others ((3/4)**200 to miss).
    key_buckets: dict[str, int] = {}
    for key in (f"visitor-{n}" for n in range(200)):
        key_buckets[key] = ok(await client.get(f"/v1/keys/{key}/explain"))["bucket"]
        if 1 in key_buckets.values() and sum(b != 1 for b in key_buckets.values()) >= 2:
            break
    heavy = next(k for k, bucket in key_buckets.items() if bucket == 1)
    light = [k for k, bucket in key_buckets.items() if bucket != 1][:2]
    pasted = f"10,1,{light[0]}\n11 1 {light[1]}\n12,1,{heavy}\n13\n"
    csrf = csrf_of(await client.get("/ui/subjects"))
    preview = await client.post("/ui/subjects", data={"csrf": csrf, "ids": pasted})
    assert "Add 4 subjects?" in preview.text
    assert "3 come with the targeting key" in preview.text
    assert "2 go to their key&#39;s bucket: 10 in bucket" in preview.text
    assert f"Subject 12 (key &#39;{heavy}&#39;): The key&#39;s bucket 1 weighs" in preview.text
    assert (await client.get("/v1/subjects/10")).status_code == 404  # a preview writes nothing
    before = await revision(client)
    done = await client.post("/ui/subjects", data={"csrf": csrf, "ids": pasted, "confirm": "on"})
    assert done.status_code == 303
    assert await revision(client) == before + 1  # one transaction
    for subject, key in ((10, light[0]), (11, light[1])):
        assert ok(await client.get(f"/v1/subjects/{subject}"))["bucket"] == key_buckets[key]
    assert ok(await client.get("/v1/subjects/12"))["bucket"] != 1
    bad = await client.post("/ui/subjects", data={"csrf": csrf, "ids": "20,x,visitor"})
    assert bad.status_code == 400 and "Line 1: A weight" in bad.text

    ok(await client.post("/v1/groups/beta"), 201)
    members = {"csrf": csrf, "members": f"10 {light[0]}"}
    preview = await client.post("/ui/groups/beta/members/paste", data=members)
    assert f"&#39;{light[0]}&#39;: not subject ids" in preview.text
    assert "not targeting keys" in preview.text and "will be refused" in preview.text
    refused = await client.post("/ui/groups/beta/members/paste", data=members | {"confirm": "on"})
    assert refused.status_code == 400 and "not targeting keys" in refused.text
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == []
