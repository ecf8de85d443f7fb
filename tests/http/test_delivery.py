"""Scheduled changes and release plans over REST, on SQLite and PostgreSQL, with the test's
clock: RFC 3339 instants (naive ones refused, 400), each step one write in history."""

from __future__ import annotations

from typing import Any, cast

import httpx

from flaggery.http.app import FlaggeryApp
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics


async def _apply_due(client: httpx.AsyncClient) -> None:
    """What the admin server's applier does every second, now (it may have done it already:
    a step is applied once either way)."""
    app = cast(FlaggeryApp, cast(httpx.ASGITransport, client._transport).app)
    store: AsyncFlaggery = app.state.services.store
    await store.apply_due()


async def _last_change(client: httpx.AsyncClient) -> dict[str, Any]:
    revision = ok(await client.get("/v1/revision"))["revision"]
    page = ok(await client.get("/v1/changes", params={"after": revision - 1}))
    change: dict[str, Any] = page["changes"][-1]
    return change


def _step(at: str, operation: str, **arguments: object) -> dict[str, object]:
    return {"at": at, "operation": operation, "arguments": arguments}


async def test_schedules_over_rest(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    naive = {"steps": [_step("2030-01-01T09:00:00", "kill_switch", feature="f", on=True)]}
    message = fails(await client.post("/v1/schedules/s", json=naive), 400, "ValidationError")
    assert "offset" in message
    # 10:00 at +01:00 is 09:00 UTC: an hour after the fake clock's 08:00... of 2030-01-01
    body = {"steps": [_step("2030-01-01T10:00:00+01:00", "set_rollout", feature="f", proportion=1)]}
    created = ok(await client.post("/v1/schedules/s", json=body), 201)
    assert created["next_at"] == "2030-01-01T09:00:00Z"
    assert created["steps"][0]["status"] == "pending"
    moved = {"steps": [_step("2030-01-01T10:00:00Z", "set_rollout", feature="f", proportion=1)]}
    edited = ok(await client.put("/v1/schedules/s", json=moved))
    assert [s["status"] for s in edited["steps"]] == ["cancelled", "pending"]
    assert edited["next_at"] == "2030-01-01T10:00:00Z"
    clock.advance(hours=9, minutes=30)
    await _apply_due(client)
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0  # not at 9:00
    clock.advance(minutes=30)
    await _apply_due(client)
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 1
    change = await _last_change(client)
    assert (change["actor"], change["operation"]) == ("schedule:s", "apply_schedule")
    listed = ok(await client.get("/v1/schedules"))["schedules"]
    assert [s["steps"][-1]["status"] for s in listed] == ["applied"]
    ok(await client.post("/v1/schedules/k", json=naive | {"steps": [
        _step("2030-01-02T00:00:00Z", "kill_switch", feature="f", on=True)]}), 201)  # fmt: skip
    cancelled = ok(await client.delete("/v1/schedules/k"))
    assert cancelled["steps"][0]["status"] == "cancelled"
    fails(await client.get("/v1/schedules/nope"), 404, "ScheduleNotFound")
    fails(await client.post("/v1/schedules/k", json=naive), 400, "ValidationError")


async def test_plans_over_rest(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    await seed_basics(client)
    steps = [
        {"proportion": 0.25, "hold_seconds": 3600},
        {"proportion": 0.5, "hold_seconds": 86400},
        {"proportion": 1},
    ]
    plan = ok(await client.post("/v1/features/f/plan", json={"variant": "B", "steps": steps}), 201)
    assert (plan["status"], plan["step"], plan["next_at"]) == ("active", -1, "2030-01-01T00:00:00Z")
    await _apply_due(client)
    plan = ok(await client.get("/v1/features/f/plan"))
    assert (plan["step"], plan["proportion"], plan["next_at"]) == (0, 0.25, "2030-01-01T01:00:00Z")
    assert plan["updated_by"] == "plan:f"
    at_quarter = ok(await client.get("/v1/features/f/rollout"))["buckets"]
    clock.advance(hours=1)
    await _apply_due(client)
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.5
    paused = ok(await client.post("/v1/features/f/plan/pause", params={"reason": "alert"}))
    assert (paused["status"], paused["next_at"]) == ("paused", None)
    assert (await _last_change(client))["actor"] == "anonymous"
    rolled = ok(await client.post("/v1/features/f/plan/rollback", params={"to_step": 0}))
    assert (rolled["status"], rolled["step"]) == ("paused", 0)
    assert ok(await client.get("/v1/features/f/rollout"))["buckets"] == at_quarter
    fails(await client.post("/v1/features/f/plan/rollback", params={"to_step": 0}), 409,
          "PlanStateConflict")  # fmt: skip
    resumed = ok(await client.post("/v1/features/f/plan/resume"))
    assert (resumed["status"], resumed["next_at"]) == ("active", "2030-01-01T02:00:00Z")
    done = ok(await client.post("/v1/features/f/plan/skip", params={"to_step": 2}))
    assert (done["status"], done["proportion"]) == ("done", 1.0)
    assert [p["feature"] for p in ok(await client.get("/v1/plans"))["plans"]] == ["f"]
    fails(await client.post("/v1/features/f/plan", json={"variant": "B", "steps": steps}), 400,
          "PlanExists")  # fmt: skip
    ok(await client.delete("/v1/features/f/plan"))
    fails(await client.get("/v1/features/f/plan"), 404, "PlanNotFound")
    bad = {"variant": "B", "steps": steps, "start": "2030-01-01"}
    fails(await client.post("/v1/features/f/plan", json=bad), 400, "ValidationError")


async def test_a_reader_cannot_change_a_plan(make_client: MakeClient) -> None:
    tokens = "r:reader:reader-5ecret-reader-5ecret-reader a:admin:admin0-5ecret-admin0-5ecret-x"
    client = await make_client(tokens=tokens)
    reader = {"Authorization": "Bearer reader-5ecret-reader-5ecret-reader"}
    assert (await client.get("/v1/plans", headers=reader)).status_code == 200
    response = await client.post("/v1/features/f/plan/pause", headers=reader)
    fails(response, 403, "Forbidden")
