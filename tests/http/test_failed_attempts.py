"""Failed authentication attempts are limited per client address, over Authorization and the
dashboard's sign-in alike (issue 18, item 3), without touching requests that present no token
or a right one on the flags route."""

from __future__ import annotations

import httpx

from flaggery.access.attempts import FAILURE_BURST
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok
from tests.http.test_ui import csrf_of

ADMIN = "admin-s3cret"
CLIENT = "client-s3cret"


async def _sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    csrf = csrf_of(await client.get("/ui/signin"))
    return await client.post("/ui/signin", data={"csrf": csrf, "token": secret})


async def test_wrong_tokens_over_rest_and_the_dashboard_share_one_limit(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_token=ADMIN, client_tokens=CLIENT)
    ok(await client.put("/v1/buckets", params={"amount": 1}, headers=_bearer(ADMIN)))
    ok(await client.post("/v1/subjects/1?weight=1", headers=_bearer(ADMIN)), 201)
    for number in range(FAILURE_BURST):
        if number % 2:
            fails(await client.get("/v1/features", headers=_bearer("guess")), 401, "Unauthorized")
        else:
            assert (await _sign_in(client, "guess")).status_code == 401
    refused = await client.get("/v1/features", headers=_bearer(ADMIN))  # even the right one
    assert "Too many failed attempts" in fails(refused, 429, "TooManyAttempts")
    assert int(refused.headers["retry-after"]) > 0
    signin = await _sign_in(client, ADMIN)
    assert signin.status_code == 429 and "Too many failed attempts" in signin.text
    assert int(signin.headers["retry-after"]) > 0
    # Requests that present no token, or a right client token, are the flags route's as ever.
    ok(await client.get("/v1/subjects/1/flags", headers=_bearer(CLIENT)))
    ok(await client.get("/healthz"))


async def test_a_right_token_is_not_a_failure(make_client: MakeClient) -> None:
    client = await make_client(admin_token=ADMIN)
    for _ in range(FAILURE_BURST * 2):
        ok(await client.get("/v1/features", headers=_bearer(ADMIN)))
        fails(await client.get("/v1/features"), 401, "Unauthorized")  # none: not a guess
    ok(await client.get("/v1/features", headers=_bearer(ADMIN)))


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_limited_address_without_a_token_is_told_to_send_one(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_token=ADMIN)
    for _ in range(FAILURE_BURST):
        fails(await client.get("/v1/features", headers=_bearer("guess")), 401, "Unauthorized")
    fails(await client.get("/v1/features", headers=_bearer("guess")), 429, "TooManyAttempts")
    assert "has none" in fails(await client.get("/v1/features"), 401, "Unauthorized")


async def test_ofrep_counts_and_refuses_alike(make_client: MakeClient) -> None:
    client = await make_client(admin_token=ADMIN, client_tokens=CLIENT)
    bulk, context = "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "1"}}
    for _ in range(FAILURE_BURST):
        assert (await client.post(bulk, json=context, headers=_bearer("guess"))).status_code == 401
    refused = await client.post(bulk, json=context, headers=_bearer(CLIENT))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert refused.json()["errorCode"] == "GENERAL"
    fails(await client.get("/v1/features", headers=_bearer(ADMIN)), 429, "TooManyAttempts")
