"""Webhook subscriptions over REST (issue 22): create, list (never a secret), read, replay,
remove; the SSRF refusal in the error envelope; the failing state on /metrics."""

from __future__ import annotations

import httpx

from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

SECRET = "s3cret-s3cret-s3cret-s3cret"
HOOK = {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "feature": "checkout"}


async def test_subscriptions_over_rest(make_client: MakeClient, store: AsyncFlaggery) -> None:
    client = await make_client(webhook_allow_loopback=True)
    created = ok(await client.post("/v1/webhooks/audit", json=HOOK), 201)
    assert created["name"] == "audit" and created["feature"] == "checkout"
    assert created["delivered"] == await store.revision() and not created["failing"]
    listed = ok(await client.get("/v1/webhooks"))
    assert [hook["name"] for hook in listed["webhooks"]] == ["audit"]
    assert SECRET not in (await client.get("/v1/webhooks")).text
    assert SECRET not in (await client.get("/v1/webhooks/audit")).text
    fails(await client.post("/v1/webhooks/audit", json=HOOK), 400, "WebhookExists")
    await store.add_feature("checkout")
    await store.add_feature("search")
    replayed = ok(await client.post("/v1/webhooks/audit/replay", params={"from_revision": 2}))
    assert replayed["delivered"] == 1
    ok(await client.delete("/v1/webhooks/audit"))
    fails(await client.get("/v1/webhooks/audit"), 404, "WebhookNotFound")
    fails(await client.delete("/v1/webhooks/audit"), 404, "WebhookNotFound")


async def test_refused_targets_answer_in_the_error_envelope(make_client: MakeClient) -> None:
    client = await make_client()
    for url in ("http://127.0.0.1:9/", "http://169.254.169.254/", "ftp://example.com/", "x"):
        message = fails(
            await client.post("/v1/webhooks/h", json={**HOOK, "url": url}),
            400,
            "WebhookTargetRefused",
        )
        assert "webhook" in message.lower(), message
    short = {**HOOK, "secret": "short"}
    fails(await client.post("/v1/webhooks/h", json=short), 400, "ValidationError")
    for operation in ("kil_switch", "revert 3", ""):  # no write records these
        typo = {**HOOK, "url": "http://127.0.0.1:9/", "operation": operation}
        message = fails(await client.post("/v1/webhooks/h", json=typo), 400, "ValidationError")
        assert "set_rollout_proportion" in message, message
    assert ok(await client.get("/v1/webhooks")) == {"webhooks": []}


async def test_a_failing_subscription_shows_on_metrics(
    make_client: MakeClient, store: AsyncFlaggery
) -> None:
    client: httpx.AsyncClient = await make_client(
        webhook_allow_loopback=True, enable_prometheus=True
    )
    ok(await client.post("/v1/webhooks/audit", json=HOOK), 201)
    async with store.database.read() as conn, conn.begin():
        await conn.exec_driver_sql("UPDATE webhooks SET failing = true")
    services = client._transport.app.state.services  # type: ignore[attr-defined]
    await services.deliverer.run_round()
    text = (await client.get("/metrics")).text
    assert 'flaggery_webhook_failing{webhook="audit"} 1.0' in text
