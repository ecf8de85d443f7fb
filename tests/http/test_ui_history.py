"""History in words, with revert (issue 21), through the app on SQLite and PostgreSQL: one
"Apply rollout" click is one revision, History says before -> after and is linked from feature,
group and test pages, a filter finds its writes after 1,100 unrelated later ones (with an
"Older" link, and in GET /v1/changes), and a change is reverted from History after a preview,
or by POST /v1/changes/{revision}/revert (?preview=true), refused with the reason on a
conflict."""

from __future__ import annotations

import asyncio
import html
import re

import httpx

from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok
from tests.http.test_ui import csrf_of, revision


async def _checkout(client: httpx.AsyncClient) -> str:
    ok(await client.put("/v1/buckets", params={"amount": 10}))
    ok(await client.post("/v1/subjects", json=[{"id": i, "weight": 1} for i in range(1, 31)]), 201)
    csrf = csrf_of(await client.get("/ui/features"))
    await client.post("/ui/features", data={"csrf": csrf, "name": "checkout"})
    await client.post("/ui/features/checkout/variants", data={"csrf": csrf, "variant": "old"})
    await client.post("/ui/features/checkout/variants", data={"csrf": csrf, "variant": "new_flow"})
    return csrf


def revisions(page: httpx.Response) -> list[int]:
    return [int(r) for r in re.findall(r'<td class="revision">(\d+)</td>', page.text)]


def said(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [html.unescape(s) for s in re.findall(r'class="sentence">([^<]*)<', page.text)]


async def test_apply_rollout_is_one_revision_and_history_says_before_and_after(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    csrf = await _checkout(client)
    before = await revision(client)
    applied = await client.post(
        "/ui/features/checkout/rollout",
        data={"csrf": csrf, "variant": "new_flow", "percent": "10"},
    )
    assert applied.status_code == 303, applied.text
    assert await revision(client) == before + 1  # was two: add_rollout, then set_rollout
    assert ok(await client.get("/v1/features/checkout/rollout"))["proportion"] == 0.1
    await client.post(
        "/ui/features/checkout/rollout",
        data={"csrf": csrf, "variant": "new_flow", "percent": "50"},
    )
    assert await revision(client) == before + 2
    page = await client.get("/ui/history")
    assert said(page)[:2] == [
        "Rollout of checkout: new_flow 10% -> 50%",
        "Rollout of checkout created: new_flow 10%",
    ]
    changes = ok(await client.get("/v1/changes", params={"after": before}))["changes"]
    assert [c["sentences"] for c in changes] == [
        ["Rollout of checkout created: new_flow 10%"],
        ["Rollout of checkout: new_flow 10% -> 50%"],
    ]
    feature = await client.get("/ui/features/checkout")
    assert 'class="history-link" href="/ui/history?feature=checkout"' in feature.text
    await client.post("/ui/groups", data={"csrf": csrf, "name": "beta testers"})
    group = await client.get("/ui/groups/beta%20testers")
    assert 'class="history-link" href="/ui/history?group=beta%20testers"' in group.text


async def test_a_filter_finds_its_writes_after_1100_later_ones(
    make_client: MakeClient, db_url: str
) -> None:
    client = await make_client()
    csrf = await _checkout(client)
    await client.post(
        "/ui/features/checkout/rollout", data={"csrf": csrf, "variant": "new_flow", "percent": "10"}
    )
    async with AsyncFlaggery.from_db_url(db_url) as store:  # concurrent: a few group commits
        await asyncio.gather(*(store.set_subject_weight(1, 2 + i % 2) for i in range(1100)))
    head = await revision(client)
    page = await client.get("/ui/history", params={"feature": "checkout"})
    assert said(page)[0] == "Rollout of checkout created: new_flow 10%"
    assert "Feature checkout created" in said(page)
    unfiltered = await client.get("/ui/history")
    assert len(said(unfiltered)) == 50 and said(unfiltered)[0].startswith("Subject 1: weight")
    older = re.search(r'<a href="(/ui/history\?before=\d+[^"]*)">Older', unfiltered.text)
    assert older, "no Older link"
    second = await client.get(html.unescape(older.group(1)))
    shown, next_shown = revisions(unfiltered), revisions(second)
    assert shown == list(range(head, head - 50, -1))
    assert next_shown == list(range(head - 50, head - 100, -1))
    # The REST history, filtered, pages through the same writes.
    first = ok(await client.get("/v1/changes", params={"feature": "checkout", "limit": 1000}))
    assert [c["operation"] for c in first["changes"]][-1] == "add_rollout"
    assert first["next_after"] == head


async def test_revert_from_history_after_a_preview(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = await _checkout(client)
    for percent in ("10", "50"):
        await client.post(
            "/ui/features/checkout/rollout",
            data={"csrf": csrf, "variant": "new_flow", "percent": percent},
        )
    raised = await revision(client)
    history = await client.get("/ui/history")
    link = f'class="revert" data-revision="{raised}" href="/ui/history/{raised}/revert"'
    assert link in history.text
    preview = await client.get(f"/ui/history/{raised}/revert")
    assert preview.status_code == 200, preview.text
    assert 'id="revert-preview"' in preview.text
    assert "Rollout of checkout: new_flow 50% -&gt; 10%" in preview.text
    assert f"Revert revision {raised}</button>" in preview.text
    assert await revision(client) == raised  # the preview wrote nothing
    no_csrf = await client.post(f"/ui/history/{raised}/revert", data={})
    assert no_csrf.status_code == 403 and await revision(client) == raised
    done = await client.post(f"/ui/history/{raised}/revert", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/ui/history"
    assert await revision(client) == raised + 1
    rollout = ok(await client.get("/v1/features/checkout/rollout"))
    assert rollout["proportion"] == 0.1
    assert said(await client.get("/ui/history"))[0] == "Rollout of checkout: new_flow 50% -> 10%"
    # Reverting the same change again: the revert itself changed the rollout since.
    refused = await client.get(f"/ui/history/{raised}/revert")
    assert refused.status_code == 409
    assert f"revision {raised + 1} (revert {raised}" in html.unescape(refused.text)
    assert 'class="revert inline"' not in refused.text  # no button


async def test_the_rest_revert_previews_reverts_and_refuses(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = await _checkout(client)
    await client.post("/ui/features/checkout/default", data={"csrf": csrf, "variant": "new_flow"})
    changed = await revision(client)
    preview = ok(await client.post(f"/v1/changes/{changed}/revert", params={"preview": "true"}))
    assert preview == {
        "revision": changed,
        "sentences": ["Feature checkout: default new_flow -> none"],
        "written": None,
    }
    assert await revision(client) == changed
    done = ok(await client.post(f"/v1/changes/{changed}/revert"))
    assert done["written"] == changed + 1
    assert ok(await client.get("/v1/features/checkout"))["default_variant"] is None
    message = fails(await client.post(f"/v1/changes/{changed}/revert"), 409, "RevertRefused")
    assert f"revision {changed + 1}" in message
    fails(await client.post("/v1/changes/999999/revert"), 404, "ChangeNotFound")
    fails(await client.post("/v1/changes/x/revert"), 422, "RequestValidationError")


async def test_the_rest_restores_a_feature_as_of_a_revision(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = await _checkout(client)
    await client.post("/ui/features/checkout/default", data={"csrf": csrf, "variant": "old"})
    then = await revision(client)
    await client.post(
        "/ui/features/checkout/rollout", data={"csrf": csrf, "variant": "new_flow", "percent": "30"}
    )
    await client.post("/ui/features/checkout/default", data={"csrf": csrf, "variant": "new_flow"})
    query: dict[str, str | int] = {"revision": then, "preview": "true"}
    preview = ok(await client.post("/v1/features/checkout/restore", params=query))
    assert sorted(preview["sentences"]) == [
        "Feature checkout: default new_flow -> old",
        "Rollout of checkout removed (was new_flow 30%)",
    ]
    assert preview["written"] is None
    history = await client.get("/ui/history", params={"feature": "checkout"})
    link = f'href="/ui/features/checkout/restore?revision={then}">Restore checkout as of this'
    assert link in history.text
    page = await client.get("/ui/features/checkout/restore", params={"revision": then})
    assert "Rollout of checkout removed (was new_flow 30%)" in page.text
    assert f'<input type="hidden" name="as_of" value="{then}">' in page.text
    assert await revision(client) == then + 2
    done = await client.post("/ui/features/checkout/restore", data={"csrf": csrf, "as_of": then})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/ui/history?feature=checkout"
    assert await revision(client) == then + 3
    fails(await client.get("/v1/features/checkout/rollout"), 404, "RolloutNotFound")
    too_far = {"revision": then + 99}
    fails(
        await client.post("/v1/features/checkout/restore", params=too_far), 400, "ValidationError"
    )
