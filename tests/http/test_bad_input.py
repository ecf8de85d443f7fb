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


NUL_LOOKUPS = [
    ("GET", "/v1/features/a%00b", "FeatureNotFound"),
    ("DELETE", "/v1/features/a%00b", "FeatureNotFound"),
    ("GET", "/v1/features/a%00b/rollout", "RolloutNotFound"),
    ("PUT", "/v1/features/f/default_variant/a%00b", "VariantNotFound"),
    ("POST", "/v1/features/f/rollout?variant=a%00b", "VariantNotFound"),
    ("GET", "/v1/groups/a%00b", "GroupNotFound"),
    ("DELETE", "/v1/groups/a%00b", "GroupNotFound"),
    ("POST", "/v1/groups/a%00b/subjects/1", "GroupNotFound"),
    ("POST", "/v1/groups/g/overrides/a%00b?variant=A", "FeatureNotFound"),
    ("GET", "/v1/abtests/a%00b", "AbTestNotFound"),
]


async def test_nul_in_a_looked_up_name_is_404_on_both_databases(
    client: httpx.AsyncClient,
) -> None:
    """PostgreSQL cannot hold NUL in text: these were 500s there, 404s on SQLite."""
    await seed_basics(client)
    ok(await client.post("/v1/groups/g"), 201)
    before = ok(await client.get("/v1/revision"))["revision"]
    for method, path, name in NUL_LOOKUPS:
        fails(await client.request(method, path), 404, name)
    assert ok(await client.get("/v1/revision"))["revision"] == before


CREATE_ROUTES = [
    "/v1/features/{}",
    "/v1/features/f/variants/{}",
    "/v1/groups/{}",
]
BAD_PATH_NAMES = {
    "NUL": "a%00b",
    "C1 control": "a%C2%85b",
    "invalid UTF-8": "%C0%AF",
    "dot": "%2E",
    "dot dot": "%2E%2E",
    "zero-width space": "a%E2%80%8Bb",
    "bidi override": "a%E2%80%AEb",
    "NFD": "cafe%CC%81",
}


@pytest.mark.parametrize("route", CREATE_ROUTES)
async def test_bad_names_in_paths_are_400(client: httpx.AsyncClient, route: str) -> None:
    await seed_basics(client)
    before = ok(await client.get("/v1/revision"))["revision"]
    for label, name in BAD_PATH_NAMES.items():
        response = await client.post(route.format(name))
        assert response.status_code == 400, (label, response.text)
        fails(response, 400, "ValidationError")
    assert ok(await client.get("/v1/revision"))["revision"] == before
    assert ok(await client.get("/v1/features"))["features"] == ["f"]
    assert ok(await client.get("/v1/groups"))["groups"] == []


def _abtest(name: str, group: str, feature: str, variant: str) -> dict[str, object]:
    groups = [
        {"name": group, "variants": {feature: variant}},
        {"name": "other", "variants": {feature: "B"}},
    ]
    return {"test": {"name": name, "start": "2100-01-01", "end": "2100-02-01", "groups": groups}}


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        (_abtest("t\x00", "g", "f", "A"), 400, "ValidationError"),
        (_abtest("t\x85", "g", "f", "A"), 400, "ValidationError"),
        (_abtest("t", "g\x00", "f", "A"), 400, "ValidationError"),
        (_abtest("t", "..", "f", "A"), 400, "ValidationError"),
        (_abtest("t", "g", "f\x00", "A"), 404, "FeatureNotFound"),
        (_abtest("t", "g", "f", "A\x00"), 404, "VariantNotFound"),
    ],
)
async def test_bad_names_in_abtest_bodies(
    client: httpx.AsyncClient, body: dict[str, object], status: int, name: str
) -> None:
    await seed_basics(client)
    before = ok(await client.get("/v1/revision"))["revision"]
    fails(await client.post("/v1/abtests", json=body), status, name)
    assert ok(await client.get("/v1/revision"))["revision"] == before
    assert ok(await client.get("/v1/abtests"))["abtests"] == []
