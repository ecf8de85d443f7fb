"""The serving routes: flags and subject from the snapshot, the fast path agreeing with the
router, id parsing, and a server that starts before its database is reachable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import msgspec
import pytest

from flaggery.http import create_app, serving
from flaggery.http.codec import parse_subject_id
from flaggery.http.errors import RequestValidationError
from flaggery.live.snapshot_file import read_snapshot_file
from flaggery.settings import Settings
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:9/nowhere"


async def test_flags_and_subject(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/g"), 201)
    ok(await client.post("/v1/groups/g/subjects/2"))
    ok(await client.post("/v1/groups/g/overrides/f", params={"variant": "B"}))
    response = await client.get("/v1/subjects/1/flags")
    assert ok(response) == {"flags": {"f": "A"}}
    assert response.headers["content-length"] == str(len(response.content))
    assert ok(await client.get("/v1/subjects/2/flags")) == {"flags": {"f": "B"}}
    subject = ok(await client.get("/v1/subjects/2"))
    assert subject["id"] == 2 and subject["weight"] == 2 and subject["groups"] == ["g"]


@pytest.mark.parametrize(
    ("path", "status", "name"),
    [
        ("/v1/subjects/77/flags", 404, "SubjectNotFound"),
        ("/v1/subjects/-3/flags", 404, "SubjectNotFound"),
        ("/v1/subjects/abc/flags", 422, "RequestValidationError"),
        ("/v1/subjects/1.5/flags", 422, "RequestValidationError"),
        ("/v1/subjects/+1/flags", 422, "RequestValidationError"),
        ("/v1/subjects/1_0/flags", 422, "RequestValidationError"),
        ("/v1/subjects/%D9%A3/flags", 422, "RequestValidationError"),  # Arabic-Indic 3
        ("/v1/subjects/9223372036854775808/flags", 422, "RequestValidationError"),
        ("/v1/subjects/-9223372036854775809", 422, "RequestValidationError"),
        ("/v1/subjects/77", 404, "SubjectNotFound"),
        ("/v1/subjects/abc", 422, "RequestValidationError"),
    ],
)
async def test_bad_and_unknown_ids(
    client: httpx.AsyncClient, path: str, status: int, name: str
) -> None:
    await seed_basics(client)
    fails(await client.get(path), status, name)


async def test_extreme_ids_are_valid(client: httpx.AsyncClient) -> None:
    ok(await client.put("/v1/buckets", params={"amount": 1}))
    for subject_id in (-(2**63), 2**63 - 1, 0):
        ok(await client.post(f"/v1/subjects/{subject_id}", params={"weight": 1}), 201)
        assert ok(await client.get(f"/v1/subjects/{subject_id}/flags")) == {"flags": {}}


async def test_fast_path_agrees_with_the_router(client: httpx.AsyncClient) -> None:
    """HEAD skips the fast path (GET only), so it shows what the router would answer."""
    await seed_basics(client)
    for subject_id in range(1, 9):
        fast = await client.get(f"/v1/subjects/{subject_id}/flags")
        routed = await client.head(f"/v1/subjects/{subject_id}/flags")
        assert routed.status_code == fast.status_code == 200
        assert routed.headers["content-length"] == fast.headers["content-length"]
        assert routed.headers["content-type"] == fast.headers["content-type"]
    assert (await client.head("/v1/subjects/99/flags")).status_code == 404


async def test_query_strings_are_ignored_when_serving(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    assert ok(await client.get("/v1/subjects/1/flags", params={"_": "123"})) == {
        "flags": {"f": "A"}
    }
    assert ok(await client.get("/v1/subjects/1", params={"x": "y"}))["id"] == 1


async def test_pre_encoded_body_is_what_msgspec_would_encode(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    response = await client.get("/v1/subjects/4/flags")
    assert response.content == msgspec.json.encode(response.json())


async def test_serves_before_the_database_is_reachable() -> None:
    """The process starts, says it is alive but not ready, and answers 503 while it keeps
    trying to load its first snapshot."""
    app = create_app(Settings(db_url=UNREACHABLE_POSTGRES, db_auto_upgrade=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            assert ok(await client.get("/healthz")) == {"status": "ok"}
            fails(await client.get("/readyz"), 503, "DatabaseUnavailable")
            fails(await client.get("/v1/subjects/1/flags"), 503, "DatabaseUnavailable")
            fails(await client.get("/v1/subjects/1"), 503, "DatabaseUnavailable")


async def test_readiness(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ready = ok(await client.get("/readyz"))
    assert ready["ready"] is True and ready["subjects"] == 8 and ready["stale"] is False
    assert ready["revision"] == ok(await client.get("/v1/revision"))["revision"]
    assert 0 <= ready["age_seconds"] < 60


async def test_read_only_replica_serves(make_client: MakeClient) -> None:
    admin = await make_client()
    await seed_basics(admin)
    replica = await make_client(admin_mode=False)
    assert ok(await replica.get("/v1/subjects/1/flags")) == {"flags": {"f": "A"}}
    assert ok(await replica.get("/v1/subjects/1"))["id"] == 1


async def test_snapshot_path_setting_saves_the_served_snapshot(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "snapshot.bin"
    client = await make_client(snapshot_path=str(path))
    await seed_basics(client)
    revision = ok(await client.get("/v1/revision"))["revision"]
    saved = None
    for _ in range(200):  # the writer saves in the background, throttled
        if path.exists():
            saved = read_snapshot_file(path)
            if saved is not None and saved.state.revision == revision:
                break
        await asyncio.sleep(0.05)
    assert saved is not None and saved.state.revision == revision


@pytest.mark.parametrize(
    "text",
    ["0", "42", "000000000000000042", "999999999999999999", "9223372036854775807", "-1"],
)
def test_the_fast_ids_read_as_the_full_rule_does(text: str) -> None:
    assert serving._subject_id(text) == parse_subject_id(text)


@pytest.mark.parametrize("text", ["\u0664\u0662", "\u00b2", "9223372036854775808", "4 2", ""])
def test_the_fast_ids_refuse_what_the_full_rule_refuses(text: str) -> None:
    with pytest.raises(RequestValidationError):
        serving._subject_id(text)
