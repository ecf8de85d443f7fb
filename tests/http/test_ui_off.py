""" "Off (disabled)" in the dashboard, on SQLite and PostgreSQL: the reserved ``__DISABLE__``
can be chosen as the default (added in the same write when the feature lacks it), typed as a
variant, rolled out and overridden, and every page shows it as "Off (disabled)" while the API
keeps the reserved name."""

from __future__ import annotations

import re

import httpx

from tests.http.conftest import MakeClient
from tests.http.helpers import ok
from tests.http.test_ui import csrf_of, revision

OFF = "Off (disabled)"


def shown(page: httpx.Response) -> str:
    """The page without the form values it posts (which keep the reserved name)."""
    assert page.status_code == 200, page.text
    return re.sub(r'value="__DISABLE__"', "", page.text)


async def test_off_as_the_default_adds_the_disabling_variant_in_one_write(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 1}))
    ok(await client.post("/v1/subjects/1", params={"weight": 1}), 201)
    csrf = csrf_of(await client.get("/ui/features"))
    await client.post("/ui/features", data={"csrf": csrf, "name": "f"})
    await client.post("/ui/features/f/variants", data={"csrf": csrf, "variant": "on"})
    page = await client.get("/ui/features/f")
    off_row = re.search(r"<td>Off \(disabled\)</td>.*?</tr>", page.text, re.S)
    assert off_row and 'name="variant" value="__DISABLE__"' in off_row.group(0)
    before = await revision(client)
    made = await client.post(
        "/ui/features/f/default", data={"csrf": csrf, "variant": "__DISABLE__"}
    )
    assert made.status_code == 303, made.text
    assert await revision(client) == before + 1
    feature = ok(await client.get("/v1/features/f"))
    assert feature["default_variant"] == "__DISABLE__" and "__DISABLE__" in feature["variants"]
    assert ok(await client.get("/v1/subjects/1/flags"))["flags"] == {"f": "__DISABLE__"}
    page = await client.get("/ui/features/f")
    assert "__DISABLE__" not in shown(page)
    assert re.search(r"<td>Off \(disabled\)</td>.*?badge live\">default<", page.text, re.S)
    assert page.text.count("<td>Off (disabled)</td>") == 1  # no second "add it" row
    listing = await client.get("/ui/features")
    assert f"<td>{OFF}</td>" in listing.text and "__DISABLE__" not in shown(listing)
    # Back to "on", then Off again: the variant exists, so only the default changes.
    await client.post("/ui/features/f/default", data={"csrf": csrf, "variant": "on"})
    before = await revision(client)
    again = await client.post(
        "/ui/features/f/default", data={"csrf": csrf, "variant": "__DISABLE__"}
    )
    assert again.status_code == 303 and await revision(client) == before + 1
    assert ok(await client.get("/v1/features/f"))["default_variant"] == "__DISABLE__"


async def test_off_typed_rolled_out_and_overridden_reads_off_everywhere(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 4}))
    csrf = csrf_of(await client.get("/ui/features"))
    await client.post("/ui/features", data={"csrf": csrf, "name": "f"})
    typed = await client.post(
        "/ui/features/f/variants", data={"csrf": csrf, "variant": "__DISABLE__"}
    )
    assert typed.status_code == 303, typed.text
    assert ok(await client.get("/v1/features/f"))["variants"] == ["__DISABLE__"]
    page = await client.get("/ui/features/f")
    assert f'<option value="__DISABLE__">{OFF}</option>' in page.text
    rolled = await client.post(
        "/ui/features/f/rollout", data={"csrf": csrf, "variant": "__DISABLE__", "percent": "20"}
    )
    assert rolled.status_code == 303, rolled.text
    assert ok(await client.get("/v1/features/f/rollout"))["variant"] == "__DISABLE__"
    await client.post("/ui/groups", data={"csrf": csrf, "name": "g"})
    override = {"csrf": csrf, "feature": "f", "variant": "__DISABLE__"}
    assert (await client.post("/ui/groups/g/overrides", data=override)).status_code == 303
    for path in ("/ui/features/f", "/ui/features", "/ui/groups/g", "/ui/history"):
        page = await client.get(path)
        assert OFF in page.text and "__DISABLE__" not in shown(page), path
        assert "add_disabling_variant" not in page.text
    history = await client.get("/ui/history")
    assert f"Rollout of f created: {OFF} 20%" in history.text
    confirmed = {"csrf": csrf, "confirm": "on"}
    await client.post("/ui/features/f/kill", data=confirmed)
    killed = await client.get("/ui/features/f")
    assert f"everyone gets {OFF}," in killed.text and "__DISABLE__" not in shown(killed)
