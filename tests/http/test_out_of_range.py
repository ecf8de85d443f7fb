"""Numbers and instants out of range, in every route that turns request input into a timedelta,
a datetime or a database integer: each is a 4xx in the usual envelope naming the field (never
a 500 from OverflowError or the database driver), on SQLite and PostgreSQL, nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.http.helpers import fails, ok, seed_basics

BIG = 2**63
HUGE = 10**30


async def _revision(client: httpx.AsyncClient) -> int:
    revision: int = ok(await client.get("/v1/revision"))["revision"]
    return revision


def _plan(*holds: Any, start: str | None = None) -> dict[str, Any]:
    steps = [
        {"proportion": (i + 1) / (len(holds) + 1), "hold_seconds": h} for i, h in enumerate(holds)
    ]
    body: dict[str, Any] = {"variant": "B", "steps": [*steps, {"proportion": 1.0}]}
    if start is not None:
        body["start"] = start
    return body


# (method, route, query, JSON body, a word the message must hold)
CASES: list[tuple[str, str, dict[str, Any], Any, str]] = [
    ("POST", "/v1/features/f/plan", {}, _plan(1e300), "hold_seconds"),
    ("POST", "/v1/features/f/plan", {}, _plan(10**20), "hold_seconds"),
    ("POST", "/v1/features/f/plan", {}, _plan(HUGE), "hold_seconds"),
    ("POST", "/v1/features/f/plan", {}, _plan(-1), "hold_seconds"),
    ("POST", "/v1/features/f/plan", {}, _plan(86400, start="9999-12-31T00:00:00Z"), "start"),
    ("POST", "/v1/features/f/plan", {}, _plan(3600, start="9999-12-31T23:59:59-23:59"), "start"),
    ("POST", "/v1/features/f/plan/rollback", {"to_step": BIG}, None, "step"),
    ("POST", "/v1/features/f/plan/skip", {"to_step": -BIG - 1}, None, "step"),
    ("GET", "/v1/changes", {"after": BIG}, None, "after"),
    ("GET", "/v1/changes", {"after": HUGE}, None, "after"),
    ("GET", "/v1/changes", {"subject": BIG}, None, "subject"),
    ("GET", "/v1/changes", {"limit": HUGE}, None, "limit"),
    ("POST", "/v1/features/f/restore", {"revision": BIG}, None, "revision"),
    ("POST", "/v1/features/f/restore", {"revision": HUGE}, None, "revision"),
    ("POST", f"/v1/changes/{BIG}/revert", {}, None, "revision"),
    (
        "POST",
        "/v1/webhooks/w",
        {},
        {"url": "http://93.184.216.34/", "secret": "s" * 20, "after": BIG},
        "after",
    ),
    (
        "POST",
        "/v1/webhooks/w",
        {},
        {"url": "http://93.184.216.34/", "secret": "s" * 20, "after": -1},
        "after",
    ),
    ("POST", "/v1/webhooks/w/replay", {"from_revision": BIG}, None, "revision"),
    ("PUT", "/v1/buckets", {"amount": BIG}, None, "amount"),
    ("POST", "/v1/subjects/9", {"weight": BIG}, None, "weight"),
    (
        "POST",
        "/v1/schedules/s",
        {},
        {
            "steps": [
                {
                    "at": "9999-12-31T23:59:59-23:59",
                    "operation": "kill_switch",
                    "arguments": {"feature": "f", "on": True},
                }
            ]
        },
        "9999",
    ),
]


@pytest.mark.parametrize(("method", "route", "query", "body", "word"), CASES)
async def test_out_of_range_input_is_a_4xx_naming_the_field(
    client: httpx.AsyncClient,
    method: str,
    route: str,
    query: dict[str, Any],
    body: Any,
    word: str,
) -> None:
    await seed_basics(client)
    before = await _revision(client)
    response = await client.request(method, route, params=query, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    message = fails(response, response.status_code, response.json()["exception"]["name"])
    assert word.lower() in message.lower(), message
    assert await _revision(client) == before
