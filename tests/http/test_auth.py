"""Read-only mode (423 on every admin route) and the admin token (401)."""

from __future__ import annotations

import re

from flaggery.http.app import OPERATIONS
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

PUBLIC = {
    ("GET", "/v1/subjects/{subject_id}"),
    ("GET", "/v1/subjects/{subject_id}/flags"),
    ("GET", "/v1/subjects/{subject_id}/explain"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}


def _concrete(path: str) -> str:
    return re.sub(r"{subject_id}", "1", re.sub(r"{(?!subject_id)\w+}", "x", path))


def test_public_operations_are_exactly_the_read_only_ones() -> None:
    assert {(op.method, op.path) for op in OPERATIONS if op.public} == PUBLIC


async def test_read_only_mode_locks_every_admin_route(make_client: MakeClient) -> None:
    client = await make_client(admin_mode=False)
    admin_operations = [op for op in OPERATIONS if not op.public]
    assert len(admin_operations) == 30
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
