"""The dashboard's Delivery page: schedules and release plans listed with UTC and local
times, created, cancelled and moved by forms that carry the CSRF token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flaggery.engine.change_words import sentences
from flaggery.engine.model import DeliveryFact, Fact
from flaggery.errors import ValidationError
from flaggery.store.plans import PlanStep
from flaggery.ui.delivery import parse_plan_steps
from tests.fakes import FakeClock
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics
from tests.http.test_delivery import _apply_due
from tests.http.test_ui import csrf_of


async def test_schedules_and_plans_from_the_dashboard(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client()
    await seed_basics(client)
    page = await client.get("/ui/delivery")
    assert page.status_code == 200
    assert "<script>" not in page.text and " style=" not in page.text
    csrf = csrf_of(page)
    form = {"csrf": csrf, "name": "launch", "at": "2030-01-01T10:00:00+01:00"}
    form |= {"operation": "kill_switch", "feature": "f", "on": "on"}
    naive = await client.post("/ui/delivery/schedules", data=form | {"at": "2030-01-01T09:00"})
    assert naive.status_code == 400 and "offset" in naive.text
    assert (await client.post("/ui/delivery/schedules", data=form)).status_code == 303
    page = await client.get("/ui/delivery")
    assert (
        '<time data-local datetime="2030-01-01T09:00:00+00:00">2030-01-01 09:00:00 UTC' in page.text
    )
    assert "/ui/static/localtime.js" in page.text
    cancel = await client.post("/ui/delivery/schedules/launch/cancel", data={"csrf": csrf})
    assert cancel.status_code == 303
    assert ok(await client.get("/v1/schedules/launch"))["steps"][0]["status"] == "cancelled"

    plan = {"csrf": csrf, "feature": "f", "variant": "B", "steps": "25% 1h, 50% 1d, 100%"}
    assert (await client.post("/ui/delivery/plans", data=plan)).status_code == 303
    await _apply_due(client)
    page = await client.get("/ui/delivery")
    assert "1 of 3 (25.0%)" in page.text
    move = "/ui/delivery/plans/f/move"
    assert (await client.post(move, data={"csrf": csrf, "action": "pause"})).status_code == 303
    assert ok(await client.get("/v1/features/f/plan"))["status"] == "paused"
    skip = {"csrf": csrf, "action": "skip", "step": "2"}
    assert (await client.post(move, data=skip)).status_code == 303
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.5
    back = {"csrf": csrf, "action": "rollback", "step": "0"}
    assert (await client.post(move, data=back)).status_code == 303
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0
    refused = await client.post(move, data=back)
    assert refused.status_code == 409  # nothing before 0%: the page says so
    assert "roll back to an earlier one" in refused.text
    fails(await client.post(move, data={"action": "pause"}), 403, "Forbidden")  # no CSRF


def test_plan_steps_in_words() -> None:
    assert parse_plan_steps("1% 1h, 5% 1d, 25% 30min, 100%") == [
        PlanStep(0.01, timedelta(hours=1)),
        PlanStep(0.05, timedelta(days=1)),
        PlanStep(0.25, timedelta(minutes=30)),
        PlanStep(1.0, None),
    ]
    with pytest.raises(ValidationError, match="Step 2"):
        parse_plan_steps("1% 1h, five percent")
    # timedelta(seconds=...) of this raises OverflowError: a 400 naming the step, not a 500
    with pytest.raises(ValidationError, match=r"Step 1's hold must be .* at most 31622400"):
        parse_plan_steps("1% 99999999999999999999d, 100%")


def describe(fact: Fact) -> str:
    (sentence,) = sentences([fact], None)
    return sentence


def test_history_says_what_a_schedule_did_and_how_late() -> None:
    late = DeliveryFact("schedule", "ramp", "applied", ("f",), "3 due steps", 7500.0)
    assert describe(late) == "Schedule ramp applied: 3 due steps (late by 2 h 5 min)"
    on_time = DeliveryFact("plan", "f", "rolled_back", ("f",), "to step 1", 0.4)
    assert describe(on_time) == "Plan f rolled back: to step 1 (on time)"
    assert describe(DeliveryFact("plan", "f", "paused")) == "Plan f paused"
