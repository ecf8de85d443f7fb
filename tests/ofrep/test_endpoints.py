"""The OFREP routes in-process on SQLite and PostgreSQL: shapes, errors in OFREP's shapes,
bulk ETag and 304, client tokens, CORS; and the flags route's ETag, 304 and Cache-Control."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flaggery.http import create_app
from flaggery.settings import Settings
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

SINGLE = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"
ORIGIN = "https://app.example.com"
UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:9/nowhere"


async def seed(client: httpx.AsyncClient) -> None:
    """2 buckets, subjects 1 and 2; 'checkout' (off: False by default, on: True) and a
    disabled 'legacy'."""
    ok(await client.put("/v1/buckets", params={"amount": 2}))
    ok(await client.post("/v1/subjects", json=[{"id": 1}, {"id": 2}]), 201)
    ok(await client.post("/v1/features/checkout"), 201)
    default = {"make_default": True}
    ok(
        await client.post(
            "/v1/features/checkout/variants/off", params=default, json={"value": False}
        ),
        201,
    )
    ok(await client.post("/v1/features/checkout/variants/on", json={"value": True}), 201)
    ok(await client.post("/v1/features/legacy"), 201)
    ok(await client.post("/v1/features/legacy/disabling_variant", params=default), 201)


def ofrep_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["errorCode"] == code and body["errorDetails"], body
    return body


async def test_single_flag(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = ok(await client.post(SINGLE + "checkout", json={"context": {"targetingKey": "1"}}))
    assert (body["key"], body["value"], body["variant"], body["reason"]) == (
        "checkout", False, "off", "STATIC",
    )  # fmt: skip
    assert body["metadata"]["revision"] == ok(await client.get("/v1/revision"))["revision"]
    ok(await client.post("/v1/features/checkout/rollout", params={"variant": "on"}), 201)
    ok(await client.put("/v1/features/checkout/rollout", params={"proportion": 1}))
    body = ok(await client.post(SINGLE + "checkout", json={"context": {"targetingKey": "2"}}))
    assert (body["value"], body["reason"], body["metadata"]["proportion"]) == (True, "SPLIT", 1.0)
    disabled = ok(await client.post(SINGLE + "legacy", json={"context": {"targetingKey": "1"}}))
    assert disabled["reason"] == "DISABLED" and "value" not in disabled
    # Not a registered subject: hashed into a bucket, which the 100% rollout holds.
    unknown = ok(await client.post(SINGLE + "checkout", json={"context": {"targetingKey": "7"}}))
    assert (unknown["value"], unknown["reason"], unknown["metadata"]["subjectKnown"]) == (
        True, "SPLIT", False,
    )  # fmt: skip
    assert unknown["metadata"]["keyHashed"] is True and unknown["metadata"]["bucket"] in (1, 2)
    # Other context attributes are accepted and ignored.
    extra = {"context": {"targetingKey": "1", "email": "a@b.c", "plan": {"tier": 2}}}
    assert ok(await client.post(SINGLE + "checkout", json=extra))["value"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "TARGETING_KEY_MISSING"),
        (b"{}", "TARGETING_KEY_MISSING"),
        (b'{"context": {}}', "TARGETING_KEY_MISSING"),
        (b'{"context": {"targetingKey": ""}}', "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": "a\\u0000b"}}', "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": "\\ud800"}}', "PARSE_ERROR"),  # msgspec: no lone surrogate
        (b'{"context": {"targetingKey": 1}}', "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": "' + b"x" * 257 + b'"}}', "INVALID_CONTEXT"),
        # More digits than int() reads (4,300): refused by length before it is read.
        (b'{"context": {"targetingKey": "' + b"1" * 5000 + b'"}}', "INVALID_CONTEXT"),
        (b'{"context": ', "PARSE_ERROR"),
        (b'{"context": []}', "PARSE_ERROR"),
        (b"[1]", "PARSE_ERROR"),
        # Nested too deeply for msgspec (RecursionError), in an attribute or in the key itself.
        (b'{"context": {"x": ' + b"[" * 3000 + b"]" * 3000 + b"}}", "PARSE_ERROR"),
        (
            b'{"context": {"targetingKey": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001 + b"}",
            "PARSE_ERROR",
        ),
        (b'{"context": {"x": ' + b"[" * 60_000, "PARSE_ERROR"),
    ],
)
async def test_bad_requests_are_400_in_ofreps_shape(
    client: httpx.AsyncClient, body: bytes, code: str
) -> None:
    await seed(client)
    failure = ofrep_error(await client.post(SINGLE + "checkout", content=body), 400, code)
    assert failure["key"] == "checkout"
    assert "key" not in ofrep_error(await client.post(BULK, content=body), 400, code)


async def test_a_lone_surrogate_is_named(client: httpx.AsyncClient) -> None:
    """msgspec's own words for ``"\\ud800"`` are "Input data was truncated"."""
    await seed(client)
    body = b'{"context": {"targetingKey": "\\ud800"}}'
    failure = ofrep_error(await client.post(SINGLE + "checkout", content=body), 400, "PARSE_ERROR")
    assert "lone UTF-16 surrogate" in failure["errorDetails"], failure
    assert "truncated" not in failure["errorDetails"], failure


async def test_a_flag_key_that_is_not_utf8_is_a_parse_error(client: httpx.AsyncClient) -> None:
    """%FF, Latin-1 caf%E9 and an encoded surrogate would all read as U+FFFD (one flag key):
    refused in OFREP's shape, not answered for another flag; real UTF-8 stays a key."""
    await seed(client)
    context = {"context": {"targetingKey": "1"}}
    for raw in (SINGLE + "%FF", SINGLE + "caf%E9", SINGLE + "%ED%A0%80", BULK + "?x=%FF"):
        failure = ofrep_error(await client.post(httpx.URL(raw), json=context), 400, "PARSE_ERROR")
        assert "UTF-8" in failure["errorDetails"], failure
    missing = await client.post(httpx.URL(SINGLE + "caf%C3%A9"), json=context)
    assert ofrep_error(missing, 404, "FLAG_NOT_FOUND")["key"] == "café"


async def test_other_errors(client: httpx.AsyncClient) -> None:
    await seed(client)
    context = {"context": {"targetingKey": "1"}}
    missing = ofrep_error(await client.post(SINGLE + "nope", json=context), 404, "FLAG_NOT_FOUND")
    assert missing["key"] == "nope" and "nope" in missing["errorDetails"]
    wrong_method = await client.get(SINGLE + "checkout")
    ofrep_error(wrong_method, 405, "GENERAL")
    assert wrong_method.headers["allow"] == "POST"  # RFC 9110: a 405 names what is allowed
    ofrep_error(await client.post("/ofrep/v2/whatever", json=context), 404, "GENERAL")
    events_posted = await client.post("/ofrep/v1/events")
    ofrep_error(events_posted, 405, "GENERAL")
    assert events_posted.headers["allow"] == "GET"
    ofrep_error(await client.post(BULK, content=b"{" * 70_000), 413, "GENERAL")


async def test_bulk_etag_and_304(client: httpx.AsyncClient) -> None:
    await seed(client)
    context = {"context": {"targetingKey": "1"}}
    first = await client.post(BULK, json=context)
    body = ok(first)
    assert {flag["key"]: flag.get("value") for flag in body["flags"]} == {
        "checkout": False, "legacy": None,
    }  # fmt: skip
    assert body["eventStreams"][0]["type"] == "sse"
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    cached = await client.post(BULK, json=context, headers={"If-None-Match": etag})
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", etag)
    # A write that does not change subject 1's answers: still 304.
    ok(await client.post("/v1/subjects/3", params={"weight": 1}), 201)
    again = await client.post(BULK, json=context, headers={"If-None-Match": etag})
    assert again.status_code == 304
    # One that does: 200 with a new tag.
    ok(await client.put("/v1/features/checkout/variants/off/value", json={"value": "no"}))
    changed = await client.post(BULK, json=context, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_flags_route_etag_and_304(make_client: MakeClient) -> None:
    for cors in (None, ORIGIN):  # without CORS, the fast path; with an Origin, the router
        client = await make_client(cors_origins=cors)
        if cors is None:
            await seed(client)
        headers = {} if cors is None else {"Origin": ORIGIN}
        first = await client.get("/v1/subjects/1/flags", headers=headers)
        assert ok(first) == {"flags": {"checkout": "off", "legacy": "__DISABLE__"}}
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            cached = await client.get(
                "/v1/subjects/1/flags", headers={**headers, "If-None-Match": tag}
            )
            assert (cached.status_code, cached.content) == (304, b"")
            assert cached.headers["etag"] == etag
        stale = await client.get("/v1/subjects/1/flags", headers={"If-None-Match": '"old"'})
        assert stale.status_code == 200 and stale.headers["etag"] == etag
        fails(await client.get("/v1/subjects/9/flags", headers=headers), 404, "SubjectNotFound")


async def test_client_tokens(make_client: MakeClient) -> None:
    admin = await make_client()
    await seed(admin)
    client = await make_client(client_tokens="alpha, beta", admin_token="root")
    context = {"context": {"targetingKey": "1"}}
    ofrep_error(await client.post(SINGLE + "checkout", json=context), 401, "GENERAL")
    wrong = {"Authorization": "Bearer gamma"}
    ofrep_error(await client.post(BULK, json=context, headers=wrong), 401, "GENERAL")
    for good in ({"Authorization": "Bearer beta"}, {"authorization": "bearer alpha"},
                 {"X-API-Key": "alpha"}, {"Authorization": "Bearer root"}):  # fmt: skip
        ok(await client.post(SINGLE + "checkout", json=context, headers=good))
        ok(await client.get("/v1/subjects/1/flags", headers=good))
        ok(await client.get("/v1/subjects/1", headers=good))
    fails(await client.get("/v1/subjects/1/flags"), 401, "Unauthorized")
    fails(await client.get("/v1/subjects/1/flags", headers={"X-API-Key": "x"}), 401, "Unauthorized")
    fails(await client.get("/v1/subjects/1"), 401, "Unauthorized")
    ok(await client.get("/healthz"))  # operations stay open for probes


async def test_named_tokens_of_the_client_role(make_client: MakeClient) -> None:
    """A named token of role client (FLAGGERY_TOKENS) closes the serving routes like
    FLAGGERY_CLIENT_TOKENS; higher roles include it; a client token cannot read admin routes."""
    admin = await make_client()
    await seed(admin)
    client = await make_client(tokens="app:client:c-secret ops:reader:r-secret")
    context = {"context": {"targetingKey": "1"}}
    fails(await client.get("/v1/subjects/1/flags"), 401, "Unauthorized")
    for secret in ("c-secret", "r-secret"):
        good = {"Authorization": f"Bearer {secret}"}
        ok(await client.get("/v1/subjects/1/flags", headers=good))
        ok(await client.post(SINGLE + "checkout", json=context, headers=good))
    as_client = {"Authorization": "Bearer c-secret"}
    fails(await client.get("/v1/features", headers=as_client), 403, "Forbidden")
    ok(await client.get("/v1/features", headers={"Authorization": "Bearer r-secret"}))


async def test_cors_preflight_and_headers(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=ORIGIN)
    await seed(client)
    for path in (SINGLE + "checkout", BULK, "/v1/subjects/1/flags"):
        preflight = await client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, if-none-match, x-api-key",
            },
        )
        assert preflight.status_code == 200, (path, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
    response = await client.post(
        BULK, json={"context": {"targetingKey": "1"}}, headers={"Origin": ORIGIN}
    )
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    flags = await client.get("/v1/subjects/1/flags", headers={"Origin": ORIGIN})
    assert flags.headers["access-control-allow-origin"] == ORIGIN
    # Without Origin the fast path answers, without CORS headers: Vary tells caches so.
    fast = await client.get("/v1/subjects/1/flags")
    assert fast.headers["vary"] == "Origin" and "access-control-allow-origin" not in fast.headers
    other = await client.get("/v1/subjects/1/flags", headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in other.headers
    admin = await client.options("/v1/features/x", headers={"Origin": ORIGIN,
                                 "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert "access-control-allow-origin" not in admin.headers  # never on the admin API


async def test_no_cors_headers_by_default(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.post(
        BULK, json={"context": {"targetingKey": "1"}}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_evaluations_are_counted_by_route_and_status(make_client: MakeClient) -> None:
    client = await make_client(enable_prometheus=True)
    await seed(client)
    context = {"context": {"targetingKey": "1"}}
    ok(await client.post(SINGLE + "checkout", json=context))
    ofrep_error(await client.post(SINGLE + "nope", json=context), 404, "FLAG_NOT_FOUND")
    etag = (await client.post(BULK, json=context)).headers["etag"]
    assert (
        await client.post(BULK, json=context, headers={"If-None-Match": etag})
    ).status_code == 304
    text = (await client.get("/metrics")).text
    for route, status in (
        (SINGLE + "{key}", 200),
        (SINGLE + "{key}", 404),
        (BULK, 200),
        (BULK, 304),
    ):
        series = (
            f'flaggery_http_requests_total{{method="POST",route="{route}",status="{status}"}} 1.0'
        )
        assert series in text, series


async def test_503_before_the_first_snapshot_not_500() -> None:
    app = create_app(Settings(db_url=UNREACHABLE_POSTGRES, db_auto_upgrade=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            context = {"context": {"targetingKey": "1"}}
            ofrep_error(await client.post(SINGLE + "f", json=context), 503, "GENERAL")
            ofrep_error(await client.post(BULK, json=context), 503, "GENERAL")


async def test_read_only_replicas_serve_ofrep(make_client: MakeClient) -> None:
    await seed(await make_client())
    replica = await make_client(admin_mode=False)
    context = {"context": {"targetingKey": "2"}}
    assert ok(await replica.post(SINGLE + "checkout", json=context))["value"] is False
    assert len(ok(await replica.post(BULK, json=context))["flags"]) == 2


async def test_several_if_none_match_lines_are_one_list(make_client: MakeClient) -> None:
    """RFC 9110 (5.3): two If-None-Match lines are one list; the tag in either matches, on the
    flags route's fast path, its router (an Origin with CORS on) and OFREP alike."""
    for cors in (None, ORIGIN):
        client = await make_client(cors_origins=cors)
        if cors is None:
            await seed(client)
        origin = [] if cors is None else [("Origin", ORIGIN)]
        etag = (await client.get("/v1/subjects/1/flags")).headers["etag"]
        for lines in ([etag, '"old"'], ['"old"', etag]):
            headers = origin + [("If-None-Match", line) for line in lines]
            cached = await client.get("/v1/subjects/1/flags", headers=headers)
            assert cached.status_code == 304, (cors, lines)
    context = {"context": {"targetingKey": "1"}}
    etag = (await client.post(BULK, json=context)).headers["etag"]
    for lines in ([etag, '"old"'], ['"old"', etag]):
        headers = [("If-None-Match", line) for line in lines]
        assert (await client.post(BULK, json=context, headers=headers)).status_code == 304
