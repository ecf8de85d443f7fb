"""Named tokens over REST (issue 11, item 1 and 2): an admin token writes, a reader token reads
but cannot write (403), no token gets 401, and each write's change-log row carries the name of
the token that made it, as GET /v1/changes shows."""

from __future__ import annotations

import re

from flaggery.http.app import OPERATIONS
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

TOKENS = "ops:admin:admin-secret robot:admin:robot-secret grafana:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}
ROBOT = {"Authorization": "Bearer robot-secret"}
READER = {"Authorization": "Bearer reader-secret"}


def _concrete(path: str) -> str:
    return re.sub(r"{subject_id}", "1", re.sub(r"{(?!subject_id)\w+}", "x", path))


async def test_each_role_on_every_route(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    # Serving and recording exposures need the client role: open without client tokens.
    guarded = [op for op in OPERATIONS if not (op.public or op.records)]
    for op in guarded:
        path = _concrete(op.path)
        fails(await client.request(op.method, path), 401, "Unauthorized")
        if op.writes:
            message = fails(await client.request(op.method, path, headers=READER), 403, "Forbidden")
            assert "'grafana' has the role reader" in message and "secret" not in message
        elif op.media_type != "text/event-stream":  # readers' stream: tests/http/test_stream.py
            response = await client.request(op.method, path, headers=READER)
            assert response.status_code not in (401, 403), (op.path, response.text)
    for op in OPERATIONS:
        if op.public or op.records:
            response = await client.request(op.method, _concrete(op.path))
            assert response.status_code not in (401, 403), op.path


async def test_changes_name_the_token_of_each_write(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    ok(await client.post("/v1/features/f", headers=ADMIN), 201)
    ok(await client.post("/v1/features/f/variants/A", headers=ROBOT), 201)
    page = ok(await client.get("/v1/changes", headers=READER))
    assert [(c["revision"], c["actor"], c["operation"]) for c in page["changes"]] == [
        (1, "ops", "add_feature"),
        (2, "robot", "add_variant"),
    ]
    assert page["changes"][0]["facts"][0]["type"] == "feature"
    assert page["changes"][0]["at"].endswith("Z") or page["changes"][0]["at"].endswith("+00:00")
    assert (page["next_after"], page["head"], page["gone"]) == (2, 2, False)
    only_a = ok(await client.get("/v1/changes?after=1&feature=f", headers=READER))
    assert [c["revision"] for c in only_a["changes"]] == [2]


async def test_without_tokens_writes_are_anonymous(make_client: MakeClient) -> None:
    client = await make_client()
    ok(await client.post("/v1/features/f"), 201)
    page = ok(await client.get("/v1/changes"))
    assert page["changes"][0]["actor"] == "anonymous"


async def test_the_legacy_admin_token_is_the_admin_named_admin(make_client: MakeClient) -> None:
    client = await make_client(admin_token="legacy-secret")
    ok(await client.post("/v1/features/f", headers={"Authorization": "Bearer legacy-secret"}), 201)
    page = ok(await client.get("/v1/changes", headers={"Authorization": "Bearer legacy-secret"}))
    assert page["changes"][0]["actor"] == "admin"


async def test_a_read_only_server_serves_history_to_readers(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS, admin_mode=False)
    assert ok(await client.get("/v1/changes", headers=READER))["changes"] == []
    fails(await client.get("/v1/changes"), 401, "Unauthorized")
    fails(await client.get("/v1/features", headers=ADMIN), 423, "NotAdmin")


async def test_bad_history_queries_are_4xx(make_client: MakeClient) -> None:
    client = await make_client()
    fails(await client.get("/v1/changes?limit=0"), 400, "ValidationError")
    fails(await client.get("/v1/changes?after=x"), 422, "RequestValidationError")
    fails(await client.get("/v1/changes?subject=1.5"), 422, "RequestValidationError")
    fails(await client.get("/v1/changes?subject=null"), 422, "RequestValidationError")


async def test_reader_routes_are_closed_off_loopback_without_tokens(
    make_client: MakeClient,
) -> None:
    """A read-only server on 0.0.0.0 with no token: every reader route it serves (history, the
    snapshot, the stream) answers 401 saying what to configure; serving stays open."""
    client = await make_client(admin_mode=False, host="0.0.0.0")
    readers = [op for op in OPERATIONS if op.replica and not op.records]
    assert {op.path for op in readers} >= {"/v1/changes", "/v1/snapshot", "/v1/stream"}
    for op in readers:
        message = fails(await client.request(op.method, _concrete(op.path)), 401, "Unauthorized")
        assert "FLAGGERY_TOKENS" in message and "0.0.0.0" in message
    for op in OPERATIONS:
        if op.public or op.records:
            response = await client.request(op.method, _concrete(op.path))
            assert response.status_code not in (401, 403), op.path
    ofrep = await client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "1"}})
    assert ofrep.status_code == 200, ofrep.text


async def test_reader_routes_stay_open_on_loopback_without_tokens(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_mode=False, host="127.0.0.1")
    ok(await client.get("/v1/changes"))
    assert (await client.get("/v1/snapshot")).status_code == 200


async def test_a_reader_token_opens_them_off_loopback(make_client: MakeClient) -> None:
    strong = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # off loopback a secret needs 32 characters
    client = await make_client(admin_mode=False, host="0.0.0.0", tokens=f"g:reader:{strong}")
    fails(await client.get("/v1/changes"), 401, "Unauthorized")
    ok(await client.get("/v1/changes", headers={"Authorization": f"Bearer {strong}"}))
