"""'Never a 500' on this round's routes (schedules, release plans, webhooks, the guard,
revert/restore, auto-stop, exposures, OFREP): malformed JSON, wrong types, missing fields,
empty or oversized names and unknown enum values are each a 4xx in the route's usual envelope,
and nothing is written. In-process (ASGI), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.http.helpers import ok, seed_basics

LONG = "n" * 5000
STEP = {"at": "2030-01-01T09:00:00Z", "operation": "kill_switch", "arguments": {"feature": "f"}}
PLAN = {"variant": "B", "steps": [{"proportion": 0.5, "hold_seconds": 60}, {"proportion": 1}]}
HOOK = {"url": "http://93.184.216.34/", "secret": "s" * 20}
ALERT = {"version": "4", "status": "firing", "receiver": "r", "groupKey": "k", "alerts": []}
BODIES: list[Any] = [b"", b"{", b"[]", b"null", b"1", b'"x"', b'{"a":1}', b"\xff\xfe"]

# (method, route, query, a valid body to spoil, spoiled variants)
ROUTES: list[tuple[str, str, dict[str, str], Any, list[Any]]] = [
    (
        "POST",
        "/v1/schedules/s",
        {},
        {"steps": [STEP]},
        [
            {"steps": "x"},
            {"steps": []},
            {"steps": [{**STEP, "operation": "explode"}]},
            {"steps": [{**STEP, "at": 5}]},
            {"steps": [{**STEP, "arguments": []}]},
            {"steps": [{**STEP, "arguments": {"feature": 1, "on": "yes"}}]},
            {"steps": [{**STEP, "arguments": {"feature": LONG, "on": True}}]},
            {"steps": [{"at": "2030-01-01T09:00:00Z"}]},
        ],
    ),
    ("PUT", "/v1/schedules/s", {}, {"steps": [STEP]}, [{"steps": [None]}]),
    (
        "POST",
        "/v1/features/f/plan",
        {},
        PLAN,
        [
            {**PLAN, "variant": ""},
            {**PLAN, "variant": LONG},
            {**PLAN, "variant": 3},
            {**PLAN, "steps": [{"proportion": "half"}]},
            {**PLAN, "steps": [{}]},
            b'{"variant":"B","steps":[{"proportion":1e999}]}',
            {**PLAN, "start": "tomorrow"},
            {**PLAN, "start": 1},
            {"steps": PLAN["steps"]},
        ],
    ),
    (
        "POST",
        "/v1/webhooks/w",
        {},
        HOOK,
        [
            {**HOOK, "url": "ftp://x/"},
            {**HOOK, "url": ""},
            {**HOOK, "url": "http://[::1"},
            {**HOOK, "secret": "short"},
            {**HOOK, "operation": LONG},
            {**HOOK, "after": "1"},
            {"url": HOOK["url"]},
            {**HOOK, "feature": LONG},
        ],
    ),
    (
        "POST",
        "/v1/guard/alertmanager",
        {},
        ALERT,
        [
            {**ALERT, "alerts": "x"},
            {**ALERT, "alerts": [{}]},
            {**ALERT, "alerts": [{"status": "firing", "labels": {"flaggery_feature": 1}}]},
        ],
    ),
    (
        "POST",
        "/v1/exposures",
        {},
        None,
        [
            {"exposures": []},
            {"exposures": [{"context_id": "1"}]},
            {"exposures": [{"context_id": "1", "test": "t", "group": "g", "timestamp": "now"}]},
        ],
    ),
    (
        "POST",
        "/ofrep/v1/evaluate/flags/f",
        {},
        None,
        [
            {"context": "x"},
            {"context": {"targetingKey": 5}},
            {"context": {"targetingKey": LONG}},
            {},
        ],
    ),
    ("POST", "/ofrep/v1/evaluate/flags", {}, None, [{"context": []}, {"context": None}]),
]

QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/v1/features/f/plan/rollback", {"to_step": "x"}),
    ("POST", "/v1/features/f/plan/skip", {"to_step": "1.5"}),
    ("POST", "/v1/features/f/plan/pause", {"reason": LONG}),
    ("POST", "/v1/features/f/restore", {}),
    ("POST", "/v1/features/f/restore", {"revision": "-1"}),
    ("POST", "/v1/features/f/restore", {"revision": "1", "preview": "maybe"}),
    ("POST", "/v1/changes/0/revert", {}),
    ("POST", "/v1/changes/x/revert", {}),
    ("POST", "/v1/changes/1/revert", {"preview": "2"}),
    ("PUT", "/v1/abtests/t/auto-stop", {}),
    ("PUT", "/v1/abtests/t/auto-stop", {"enabled": "perhaps"}),
    ("PUT", f"/v1/abtests/{LONG}/auto-stop", {"enabled": "true"}),
    ("POST", "/v1/webhooks/w/replay", {"from_revision": "0x10"}),
    ("POST", f"/v1/webhooks/{LONG}", {}),
    ("POST", "/v1/schedules/%20", {}),
    ("DELETE", f"/v1/schedules/{LONG}", {}),
    ("POST", f"/v1/features/{LONG}/plan", {}),
]


def _cases() -> list[tuple[str, str, dict[str, str], Any]]:
    cases = []
    for method, route, query, _valid, spoiled in ROUTES:
        cases += [(method, route, query, body) for body in [*BODIES, *spoiled]]
    return cases + [(method, route, query, None) for method, route, query in QUERIES]


async def _revision(client: httpx.AsyncClient) -> int:
    revision: int = ok(await client.get("/v1/revision"))["revision"]
    return revision


async def test_bad_input_on_new_routes_is_a_4xx_never_a_500(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    before = await _revision(client)
    failures = []
    for method, route, query, body in _cases():
        content = body if isinstance(body, bytes) else None
        payload = None if isinstance(body, bytes) or body is None else body
        response = await client.request(method, route, params=query, content=content, json=payload)
        if not 400 <= response.status_code < 500 or "json" not in response.headers.get(
            "content-type", ""
        ):
            failures.append((method, route, query, body, response.status_code, response.text[:200]))
    assert failures == []
    assert await _revision(client) == before


@pytest.mark.parametrize("name", ["", " ", "a/b", LONG])
async def test_odd_names_in_new_routes_paths(client: httpx.AsyncClient, name: str) -> None:
    for method, route in [
        ("POST", "/v1/schedules/{}"),
        ("POST", "/v1/webhooks/{}"),
        ("POST", "/v1/features/{}/plan"),
    ]:
        response = await client.request(method, route.format(name), json={})
        # "" is Starlette's trailing-slash redirect (307): not a write, not a 500
        assert 300 <= response.status_code < 500, (route, response.status_code, response.text)


@pytest.mark.parametrize(
    "alert",
    [
        {"status": "exploding", "labels": {"flaggery_feature": "f"}},
        {"status": "firing", "labels": {"flaggery_feature": LONG}},
        {"status": "firing", "labels": {"flaggery_feature": "f", "flaggery_action": "boom"}},
    ],
)
async def test_the_guard_answers_odd_alerts_one_by_one(
    client: httpx.AsyncClient, alert: dict[str, Any]
) -> None:
    """Alertmanager retries a non-2xx answer, so the guard answers 200 with each alert's
    outcome: an unknown status is ignored, an unknown feature or action refused, nothing
    written."""
    await seed_basics(client)
    before = await _revision(client)
    answer = ok(await client.post("/v1/guard/alertmanager", json={**ALERT, "alerts": [alert]}))
    assert answer["alerts"][0]["outcome"] in {"ignored", "refused"}
    assert await _revision(client) == before
