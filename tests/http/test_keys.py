"""GET /v1/keys/{key}/flags and /explain (issue 19): any targeting key over REST, fast path and
router alike, with ETags, clear errors for bad keys, and read-only servers serving them."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from flaggery.engine.state_codec import decode_state
from tests.engine.naive import naive_bucket_of_key
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

ROUTER = {"X-Flaggery-Min-Revision": "0"}  # the fast path leaves these to the router
KEYS = ["6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f", "ana@example.com", "a/b c€", "042", "line\nbreak"]


def _path(key: str, route: str = "flags") -> str:
    return f"/v1/keys/{quote(key, safe='')}/{route}"


async def _seed_rollout(client: httpx.AsyncClient) -> None:
    """seed_basics, with B rolled out to half of the 4 buckets."""
    await seed_basics(client)
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 0.5}))


@pytest.mark.parametrize("headers", [{}, ROUTER], ids=["fast path", "router"])
async def test_a_hashed_key_gets_what_its_bucket_gets(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await _seed_rollout(client)
    state = decode_state((await client.get("/v1/snapshot")).content)
    rollout = set(ok(await client.get("/v1/features/f/rollout"))["buckets"])
    answers = []
    for n in range(40):
        key = f"visitor-{n}"
        bucket = naive_bucket_of_key(state, key)
        flags = ok(await client.get(_path(key), headers=headers))
        assert flags == {"flags": {"f": "B" if bucket in rollout else "A"}}
        answers.append(flags["flags"]["f"])
    assert set(answers) == {"A", "B"}


@pytest.mark.parametrize("headers", [{}, ROUTER], ids=["fast path", "router"])
async def test_any_text_travels_percent_encoded(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await _seed_rollout(client)
    for key in KEYS:
        explained = ok(await client.get(_path(key, "explain")))
        assert explained["key"] == key and explained["hashed"] is True
        flags = ok(await client.get(_path(key), headers=headers))
        assert flags == {"flags": {f: why["variant"] for f, why in explained["features"].items()}}


async def test_a_registered_subjects_id_is_that_subject(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/g"), 201)
    ok(await client.post("/v1/groups/g/subjects/2"))
    ok(await client.post("/v1/groups/g/overrides/f", params={"variant": "B"}))
    by_subject = await client.get("/v1/subjects/2/flags")
    by_key = await client.get("/v1/keys/2/flags")
    assert by_key.content == by_subject.content == b'{"flags":{"f":"B"}}'
    assert by_key.headers["etag"] == by_subject.headers["etag"]
    explained = ok(await client.get("/v1/keys/2/explain"))
    assert (explained["subject_id"], explained["hashed"], explained["groups"]) == (2, False, ["g"])
    assert explained["features"]["f"] == {"variant": "B", "source": "override", "group": "g"}


@pytest.mark.parametrize("headers", [{}, ROUTER], ids=["fast path", "router"])
async def test_etag_and_304(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await _seed_rollout(client)
    first = await client.get(_path("ana@example.com"), headers=headers)
    etag = first.headers["etag"]
    again = await client.get(_path("ana@example.com"), headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/v1/keys//flags", "has 0"),
        (_path("x" * 257), "has 257"),
        ("/v1/keys/a%00b/flags", "NUL"),
        ("/v1/keys//explain", "has 0"),
        (_path("\x00", "explain"), "NUL"),
    ],
)
async def test_bad_keys_are_refused_with_the_reason(
    client: httpx.AsyncClient, path: str, reason: str
) -> None:
    await seed_basics(client)
    assert reason in fails(await client.get(path), 400, "InvalidTargetingKey")


@pytest.mark.parametrize("headers", [{}, ROUTER], ids=["fast path", "router"])
async def test_a_path_that_is_not_utf8_is_refused_not_replaced(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """uvicorn decodes %FF as U+FFFD: %FF, %E9 (Latin-1 é) and %EF%BF%BD (U+FFFD itself) would
    be one key. Each route refuses such a path; real UTF-8 U+FFFD stays a key."""
    await _seed_rollout(client)
    for raw in ("/v1/keys/%FF/flags", "/v1/keys/caf%E9/explain", "/v1/keys/%ED%A0%80/flags"):
        message = fails(await client.get(httpx.URL(raw), headers=headers), 400,
                        "ValidationError")  # fmt: skip
        assert "UTF-8" in message, message
    fails(await client.get(httpx.URL("/v1/groups/%FF"), headers=headers), 400,
          "ValidationError")  # fmt: skip
    for query in ("?x=caf%E9", "?context.country=%FF"):  # a cache buster too: one answer
        fails(await client.get(httpx.URL("/v1/keys/k/flags" + query), headers=headers), 400,
              "ValidationError")  # fmt: skip
    ok(await client.get(httpx.URL("/v1/keys/k/flags?x=caf%C3%A9"), headers=headers))
    signed_in = httpx.URL("/v1/subjects/900?weight=1&like_key=caf%E9")  # Latin-1, not UTF-8
    fails(await client.post(signed_in), 400, "ValidationError")
    fails(await client.get("/v1/subjects/900"), 404, "SubjectNotFound")  # nothing written
    ok(await client.get(httpx.URL("/v1/keys/%EF%BF%BD/flags"), headers=headers))


async def test_a_key_of_256_characters_is_served(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    assert ok(await client.get(_path("€" * 256))) == {"flags": {"f": "A"}}


async def test_explain_gives_the_hash_and_bucket(client: httpx.AsyncClient) -> None:
    await _seed_rollout(client)
    state = decode_state((await client.get("/v1/snapshot")).content)
    explained = ok(await client.get(_path("ana@example.com", "explain")))
    assert explained["bucket"] == naive_bucket_of_key(state, "ana@example.com")
    assert explained["bucket_count"] == 4 and explained["subject_id"] is None
    assert len(explained["key_hash"]) == 16


async def test_read_only_servers_serve_keys(make_client: MakeClient) -> None:
    admin = await make_client()
    await seed_basics(admin)
    replica = await make_client(admin_mode=False)
    assert ok(await replica.get(_path("ana@example.com"))) == {"flags": {"f": "A"}}
    assert ok(await replica.get(_path("ana@example.com", "explain")))["hashed"] is True
