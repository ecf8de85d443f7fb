"""The dashboard's Webhooks page (issue 22): subscribe, see the cursor and the failing state,
replay, remove; CSRF on every form, names escaped, the secret never shown."""

from __future__ import annotations

from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient
from tests.http.helpers import fails
from tests.http.test_ui import csrf_of

SECRET = "s3cret-s3cret-s3cret-s3cret"
XSS = "<img src=x onerror=alert(1)>"


async def test_subscribe_replay_and_remove_from_the_dashboard(
    make_client: MakeClient, store: AsyncFlaggery
) -> None:
    client = await make_client(webhook_allow_loopback=True)
    page = await client.get("/ui/webhooks")
    assert page.status_code == 200 and "No webhooks." in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    csrf = csrf_of(page)
    form = {"csrf": csrf, "name": "audit", "url": "http://127.0.0.1:9/h", "secret": SECRET}
    fails(await client.post("/ui/webhooks", data={**form, "csrf": "0" * 64}), 403, "Forbidden")
    refused = await client.post("/ui/webhooks", data={**form, "operation": XSS})
    assert refused.status_code == 400 and "No write records the operation" in refused.text
    assert XSS not in refused.text and "&lt;img src=x onerror=alert(1)&gt;" in refused.text
    assert '<option value="kill_switch">' in refused.text  # the names the field offers
    created = await client.post("/ui/webhooks", data={**form, "operation": "rm_feature"})
    assert created.status_code == 303, created.text
    listed = await client.get("/ui/webhooks")
    assert "audit" in listed.text and "revision 0" in listed.text and SECRET not in listed.text
    assert "operation=rm_feature" in listed.text
    await store.add_feature("f")
    await store.add_feature("g")
    async with store.database.read() as conn, conn.begin():
        await conn.exec_driver_sql(
            "UPDATE webhooks SET delivered = 2, failing = true, "
            "failing_since = '2030-01-01 00:00:00', last_error = 'HTTP 503'"
        )
    failing = (await client.get("/ui/webhooks")).text
    assert "failing" in failing and "HTTP 503" in failing and "revision 2" in failing
    replay = {"csrf": csrf, "from_revision": "1"}
    assert (await client.post("/ui/webhooks/audit/replay", data=replay)).status_code == 303
    # The cursor moved back to 0; the app's own deliverer may already have moved it on
    # (its filter keeps nothing here), so the cleared failure is what shows the replay.
    replayed = await store.get_webhook("audit")
    assert not replayed.failing and replayed.last_error is None
    bad = await client.post("/ui/webhooks/audit/replay", data={"csrf": csrf, "from_revision": "x"})
    assert bad.status_code == 400 and "from_revision" in bad.text
    unconfirmed = await client.post("/ui/webhooks/audit/remove", data={"csrf": csrf})
    assert unconfirmed.status_code == 400
    removed = await client.post("/ui/webhooks/audit/remove", data={"csrf": csrf, "confirm": "on"})
    assert removed.status_code == 303 and await store.webhooks() == []


async def test_a_refused_url_is_shown_beside_the_form(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = csrf_of(await client.get("/ui/webhooks"))
    form = {"csrf": csrf, "name": "meta", "url": "http://169.254.169.254/", "secret": SECRET}
    refused = await client.post("/ui/webhooks", data=form)
    assert refused.status_code == 400 and "link-local" in refused.text
