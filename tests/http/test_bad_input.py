"""Bad input is a 4xx in the usual envelope at every entry point, never a 500, and nothing is
written: integers of any length, and names the store refuses (the rules are in
tests/store/test_names.py; here, that every route applies them)."""

from __future__ import annotations

import httpx
import pytest

from tests.http.helpers import fails, ok, seed_basics

HUGE = "9" * 5000  # past int()'s 4,300-digit limit
NOT_INTEGERS = ["18446744073709551616", HUGE, "-" + HUGE, "0" * 5000 + "1" * 20, "1_000", "٣"]

SUBJECT_ROUTES = [
    ("GET", "/v1/subjects/{}/flags"),
    ("GET", "/v1/subjects/{}"),
    ("POST", "/v1/subjects/{}?weight=1"),
    ("PUT", "/v1/subjects/{}?weight=1"),
    ("DELETE", "/v1/subjects/{}"),
    ("POST", "/v1/groups/g/subjects/{}"),
    ("DELETE", "/v1/groups/g/subjects/{}"),
]


@pytest.mark.parametrize("text", NOT_INTEGERS)
async def test_subject_ids_of_any_length_are_422(client: httpx.AsyncClient, text: str) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/groups/g"), 201)
    before = ok(await client.get("/v1/revision"))["revision"]
    for method, route in SUBJECT_ROUTES:
        response = await client.request(method, route.format(text))
        message = fails(response, 422, "RequestValidationError")
        assert len(message) < 200  # the id is not echoed whole
    assert ok(await client.get("/v1/revision"))["revision"] == before


@pytest.mark.parametrize("text", NOT_INTEGERS)
async def test_integer_queries_and_bodies_of_any_length_are_422(
    client: httpx.AsyncClient, text: str
) -> None:
    await seed_basics(client)
    before = ok(await client.get("/v1/revision"))["revision"]
    for method, route, params in [
        ("PUT", "/v1/buckets", {"amount": text}),
        ("POST", "/v1/subjects/100", {"weight": text}),
        ("PUT", "/v1/subjects/1", {"weight": text}),
        ("PUT", "/v1/features/f/rollout", {"proportion": text}),
    ]:
        response = await client.request(method, route, params=params)
        assert response.status_code in (400, 422), response.text
    if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        for body in (b'[{"id": %s}]', b'[{"id": 100, "weight": %s}]'):
            response = await client.post("/v1/subjects", content=body % text.encode())
            assert response.status_code in (400, 422), response.text
    assert ok(await client.get("/v1/revision"))["revision"] == before


async def test_an_absurd_content_length_is_refused() -> None:
    """httptools refuses such a header itself; the check must not depend on it."""
    from starlette.requests import Request

    from flaggery.http.endpoint import _read_body
    from flaggery.http.errors import ContentTooLarge

    request = Request(
        {"type": "http", "method": "POST", "headers": [(b"content-length", HUGE.encode())]}
    )
    with pytest.raises(ContentTooLarge):
        await _read_body(request)
