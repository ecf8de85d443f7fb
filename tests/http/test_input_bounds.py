"""Bounds on what a client sends, found by a new-user trial: JSON nested too deeply to decode,
integers beyond what the database stores, loosely written or repeated query integers, values
beyond their size and depth bounds. Each is a 4xx in the usual envelope (never a 500), on
SQLite and PostgreSQL, and nothing is written."""

from __future__ import annotations

import httpx
import pytest

from flaggery.store.validation import MAX_VALUE_DEPTH
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics


def _nested_json(depth: int) -> bytes:
    """A JSON object ``depth`` objects deep."""
    return b'{"a":' * (depth - 1) + b'{"leaf":1}' + b"}" * (depth - 1)


async def _revision(client: httpx.AsyncClient) -> int:
    revision: int = ok(await client.get("/v1/revision"))["revision"]
    return revision


async def test_a_lone_surrogate_is_named_not_called_truncated(client: httpx.AsyncClient) -> None:
    """msgspec says "Input data was truncated" for an unpaired high-surrogate escape: the
    message names the surrogate instead; a paired one is a character, a cut body still cut."""
    await seed_basics(client)
    before = await _revision(client)
    route = "/v1/features/f/variants/A/value"
    for body in (b'{"value": "\\ud800"}', b'{"value": "a\\uDBFFb"}'):
        message = fails(await client.put(route, content=body), 422, "RequestValidationError")
        assert "lone UTF-16 surrogate" in message and "truncated" not in message, message
    assert await _revision(client) == before
    cut = fails(await client.put(route, content=b'{"value": "ab'), 422, "RequestValidationError")
    assert "truncated" in cut and "surrogate" not in cut, cut
    ok(await client.put(route, content=b'{"value": "\\ud83d\\ude00"}'))
    assert ok(await client.get("/v1/features/f"))["values"]["A"] == "\U0001f600"


@pytest.mark.parametrize("depth", [3_000, 5_000, 100_000])
async def test_a_body_nested_too_deeply_to_decode_is_422(
    client: httpx.AsyncClient, depth: int
) -> None:
    await seed_basics(client)
    before = await _revision(client)
    body = b'{"value":' + _nested_json(depth) + b"}"
    for method, route in [
        ("PUT", "/v1/features/f/variants/A/value"),
        ("POST", "/v1/features/f/variants/C"),
    ]:
        response = await client.request(method, route, content=body)
        message = fails(response, 422, "RequestValidationError")
        assert "nested too deeply" in message
    test = b'{"test": {"name": "t", "end": "2030-01-01", "groups": ' + b"[" * depth
    fails(await client.post("/v1/abtests", content=test), 422, "RequestValidationError")
    assert await _revision(client) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_nested_json(MAX_VALUE_DEPTH + 1), f"at most {MAX_VALUE_DEPTH} deep"),
        (_nested_json(600), f"at most {MAX_VALUE_DEPTH} deep"),
        (b'"' + b"x" * 70_000 + b'"', "at most 65536 bytes as JSON"),
    ],
    ids=["33-deep", "600-deep", "long-string"],
)
async def test_values_beyond_their_bounds_are_400(
    client: httpx.AsyncClient, value: bytes, message: str
) -> None:
    await seed_basics(client)
    before = await _revision(client)
    body = b'{"value":' + value + b"}"
    for method, route in [
        ("PUT", "/v1/features/f/variants/A/value"),
        ("POST", "/v1/features/f/variants/C"),
    ]:
        response = await client.request(method, route, content=body)
        assert message in fails(response, 400, "ValidationError")
    assert await _revision(client) == before
    deepest = b'{"value":' + _nested_json(MAX_VALUE_DEPTH) + b"}"
    ok(await client.put("/v1/features/f/variants/A/value", content=deepest))


@pytest.mark.parametrize(
    "params",
    [
        {"after": "99999999999999999999"},
        {"after": str(2**63)},
        {"after": str(-(2**63) - 1)},
        {"limit": str(2**64)},
        {"subject": str(2**63)},
    ],
)
async def test_change_queries_beyond_64_bits_are_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await seed_basics(client)
    message = fails(await client.get("/v1/changes", params=params), 422, "RequestValidationError")
    assert "signed 64-bit" in message and next(iter(params)) in message


async def test_the_last_revision_that_fits_is_an_empty_page(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    page = ok(await client.get("/v1/changes", params={"after": str(2**63 - 1)}))
    assert page["changes"] == []
    fails(await client.get("/v1/changes", params={"after": "-1"}), 400, "ValidationError")


@pytest.mark.parametrize("text", ["1e3", "1.0", "+5", " 5", "5 ", "0x10", "1_000", "٣", "", "-"])
async def test_query_integers_are_plain_decimal_digits(
    client: httpx.AsyncClient, text: str
) -> None:
    await seed_basics(client)
    before = await _revision(client)
    for method, route, name in [
        ("PUT", "/v1/subjects/1", "weight"),
        ("POST", "/v1/subjects/42", "weight"),
        ("PUT", "/v1/buckets", "amount"),
        ("GET", "/v1/changes", "after"),
        ("GET", "/v1/changes", "limit"),
        ("GET", "/v1/changes", "subject"),
    ]:
        response = await client.request(method, route, params={name: text})
        message = fails(response, 422, "RequestValidationError")
        assert name in message
    assert await _revision(client) == before
    assert ok(await client.get("/v1/subjects/1"))["weight"] == 1


async def test_a_repeated_query_parameter_is_422_naming_it(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    before = await _revision(client)
    for method, url in [
        ("PUT", "/v1/subjects/1?weight=1&weight=2"),
        ("PUT", "/v1/buckets?amount=1&amount=1"),
        ("POST", "/v1/features/f/variants/C?make_default=true&make_default=false"),
        ("GET", "/v1/changes?after=0&limit=5&limit=6"),
    ]:
        message = fails(await client.request(method, url), 422, "RequestValidationError")
        assert "given more than once" in message
    assert await _revision(client) == before
    assert ok(await client.get("/v1/subjects/1"))["weight"] == 1
    # A negative integer is written with '-' (and refused by the route's own rule).
    fails(await client.put("/v1/subjects/1", params={"weight": "-3"}), 400, "ValidationError")


@pytest.mark.parametrize("header", ["X-Flaggery-Min-Revision"])
@pytest.mark.parametrize("text", ["99999999999999999999", str(2**63), "1e3", "-1"])
async def test_revision_headers_beyond_64_bits_are_422(
    client: httpx.AsyncClient, header: str, text: str
) -> None:
    await seed_basics(client)
    response = await client.get("/v1/features", headers={header: text})
    assert header in fails(response, 422, "RequestValidationError")


async def test_a_client_token_on_an_admin_route_says_what_it_is(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_token="admin-secret", client_tokens="client-secret")
    bearer = {"Authorization": "Bearer client-secret"}
    message = fails(await client.post("/v1/features/f", headers=bearer), 403, "Forbidden")
    assert "client token" in message and "admin" in message
    assert "client-secret" not in message
    message = fails(await client.get("/v1/features", headers=bearer), 403, "Forbidden")
    assert "client token" in message and "reader" in message
    api_key = {"X-API-Key": "client-secret"}  # one credential rule: the same answer
    message = fails(await client.post("/v1/features/f", headers=api_key), 403, "Forbidden")
    assert "client token" in message and "client-secret" not in message
    wrong = {"Authorization": "Bearer nobody"}
    assert "wrong" in fails(await client.post("/v1/features/f", headers=wrong), 401, "Unauthorized")
