"""Read-only mode (423 on every admin route; replica routes are served, tests/http/test_roles.py)
and the admin token (401)."""

from __future__ import annotations

import re

import pytest

from flaggery.http.app import OPERATIONS
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

PUBLIC = {
    ("GET", "/v1/subjects/{subject_id}"),
    ("GET", "/v1/subjects/{subject_id}/flags"),
    ("GET", "/v1/subjects/{subject_id}/explain"),
    ("GET", "/v1/keys/{key:targeting_key}/flags"),
    ("GET", "/v1/keys/{key:targeting_key}/explain"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}


def _concrete(path: str) -> str:
    return re.sub(r"{subject_id}", "1", re.sub(r"{(?!subject_id)\w+}", "x", path))


def test_public_operations_are_exactly_the_read_only_ones() -> None:
    assert {(op.method, op.path) for op in OPERATIONS if op.public} == PUBLIC


async def test_read_only_mode_locks_every_admin_route(make_client: MakeClient) -> None:
    client = await make_client(admin_mode=False)
    admin_operations = [op for op in OPERATIONS if not (op.public or op.replica)]
    # 33 + the kill switch on and off + a group's rule set and removed + a test's audience
    # + 13 of schedules and release plans + 5 of webhooks + the guard route + a revert, a
    # feature's restore and a test's auto_stop + group members in bulk
    assert len(admin_operations) == 61
    for op in admin_operations:
        response = await client.request(op.method, _concrete(op.path))
        message = fails(response, 423, "NotAdmin")
        assert "FLAGGERY_ADMIN_MODE" in message
    fails(await client.get("/v1/subjects/1/flags"), 404, "SubjectNotFound")
    ok(await client.get("/healthz"))
    ok(await client.get("/readyz"))
    ok(await client.get("/openapi.json"))
    assert (await client.get("/docs")).status_code == 200


async def test_admin_token(make_client: MakeClient) -> None:
    client = await make_client(admin_token="s3cret-token")
    response = await client.put("/v1/buckets", params={"amount": 2})
    fails(response, 401, "Unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = {"Authorization": "Bearer s3cret-tokeN"}
    fails(await client.put("/v1/buckets", params={"amount": 2}, headers=wrong), 401, "Unauthorized")
    basic = {"Authorization": "Basic s3cret-token"}
    fails(await client.put("/v1/buckets", params={"amount": 2}, headers=basic), 401, "Unauthorized")

    client.headers["Authorization"] = "Bearer s3cret-token"
    await seed_basics(client)
    del client.headers["Authorization"]
    assert ok(await client.get("/v1/subjects/1/flags")) == {"flags": {"f": "A"}}
    ok(await client.get("/v1/subjects/1"))
    fails(await client.get("/v1/features"), 401, "Unauthorized")


async def test_read_only_wins_over_token(make_client: MakeClient) -> None:
    client = await make_client(admin_mode=False, admin_token="t")
    headers = {"Authorization": "Bearer t"}
    fails(await client.get("/v1/features", headers=headers), 423, "NotAdmin")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer s3cret-token",
        "bearer s3cret-token",
        "BEARER s3cret-token",
        "bEaReR s3cret-token",
        "Bearer   s3cret-token",  # 1*SP between scheme and token (RFC 9110)
        "  Bearer s3cret-token  ",
    ],
)
async def test_the_scheme_is_case_insensitive(make_client: MakeClient, header: str) -> None:
    client = await make_client(admin_token="s3cret-token")
    ok(await client.put("/v1/buckets", params={"amount": 1}, headers={"Authorization": header}))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "has none"),
        ([("Authorization", "")], "another scheme"),
        ([("Authorization", "Bearer")], "token is missing"),
        ([("Authorization", "Bearer ")], "token is missing"),
        ([("Authorization", "Bearer  ")], "token is missing"),
        ([("Authorization", "Token s3cret-token")], "another scheme"),
        ([("Authorization", "Bearers3cret-token")], "another scheme"),
        ([("Authorization", "Basic czNjcmV0LXRva2Vu")], "another scheme"),
        ([("Authorization", "Bearer s3cret-token extra")], "token is wrong"),
        ([("Authorization", "Bearer s3cret-tokeN")], "token is wrong"),
        ([("Authorization", "Bearer s3cret")], "token is wrong"),
    ],
)
async def test_bad_authorization_headers(
    make_client: MakeClient, headers: list[tuple[str, str]], reason: str
) -> None:
    client = await make_client(admin_token="s3cret-token")
    response = await client.put("/v1/buckets", params={"amount": 1}, headers=headers)
    message = fails(response, 401, "Unauthorized")
    assert reason in message and "s3cret" not in message
    assert ok(await client.get("/v1/buckets", headers=_good()))["total_buckets"] == 0


def _good() -> dict[str, str]:
    return {"Authorization": "Bearer s3cret-token"}
