"""The dashboard's Delivery page: schedules and release plans listed with UTC and local
times, created, cancelled and moved by forms that carry the CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flaggery.engine.change_words import sentences
from flaggery.engine.model import DeliveryFact, Fact
from flaggery.errors import ValidationError
from flaggery.store.plans import PlanStep, hold_words
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


async def test_edit_a_schedule_from_the_dashboard(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client()
    await seed_basics(client)
    csrf = csrf_of(await client.get("/ui/delivery"))
    form = {"csrf": csrf, "name": "launch", "at": "2030-01-01T09:00:00Z"}
    form |= {"operation": "set_rollout", "feature": "f", "variant": "B", "percent": "10"}
    assert (await client.post("/ui/delivery/schedules", data=form)).status_code == 303
    page = await client.get("/ui/delivery")
    assert 'action="/ui/delivery/schedules/launch/edit"' in page.text
    assert 'value="2030-01-01T09:00:00+00:00"' in page.text  # the pending step, to edit
    edit = "/ui/delivery/schedules/launch/edit"
    moved = {"csrf": csrf, "edit": "launch", "rows": "2", "at0": "2030-01-01T11:00:00+01:00"}
    moved |= {"operation0": "set_rollout"}
    moved |= {"arguments0": '{"feature": "f", "variant": "B", "proportion": 0.25}'}
    bad = await client.post(edit, data=moved | {"arguments0": "[1]"})
    assert bad.status_code == 400 and "JSON object" in bad.text
    assert "[1]</textarea>" in bad.text  # what was typed stays in the form
    naive = await client.post(edit, data=moved | {"at0": "2030-01-01T10:00"})
    assert naive.status_code == 400 and "offset" in naive.text
    assert (await client.post(edit, data=moved)).status_code == 303
    steps = ok(await client.get("/v1/schedules/launch"))["steps"]
    # the edit replaced the pending step (one write): the old one is kept as cancelled
    assert [(s["status"], s["at"]) for s in steps] == [
        ("cancelled", "2030-01-01T09:00:00Z"),  # replaced: kept, never to fire
        ("pending", "2030-01-01T10:00:00Z"),
    ]
    assert steps[1]["arguments"]["proportion"] == 0.25
    clock.now = datetime(2030, 1, 1, 9, 30, tzinfo=UTC)  # the old instant passed: nothing fires
    await _apply_due(client)
    fails(await client.get("/v1/features/f/rollout"), 404, "RolloutNotFound")
    clock.now = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    await _apply_due(client)
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.25
    fails(await client.post(edit, data=moved | {"csrf": ""}), 403, "Forbidden")
    kill = {"csrf": csrf, "edit": "launch", "rows": "2", "operation0": "kill_switch"}
    kill |= {"at0": "2030-01-01T12:00:00Z", "arguments0": '{"feature": "f", "on": true}'}
    kill |= {"operation1": "kill_switch", "at1": "2030-01-01T13:00:00Z"}
    kill |= {"arguments1": '{"feature": "f", "on": false}'}
    assert (await client.post(edit, data=kill)).status_code == 303  # two new steps
    page = await client.get("/ui/delivery")
    assert 'name="rows" value="3"' in page.text  # two pending rows and an empty one
    assert (await client.post(edit, data=kill | {"drop0": "on"})).status_code == 303
    steps = ok(await client.get("/v1/schedules/launch"))["steps"]
    pending = [(s["at"], s["arguments"]) for s in steps if s["status"] == "pending"]
    assert pending == [("2030-01-01T13:00:00Z", {"feature": "f", "on": False})]


async def test_schedule_an_abtest_start_and_stop(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    await seed_basics(client)
    page = await client.get("/ui/delivery")
    assert "<option>f</option>" in page.text and "<option>B</option>" in page.text
    csrf = csrf_of(page)
    start = {"csrf": csrf, "kind": "start_abtest", "name": "ab", "test": "t1"}
    start |= {"at": "2030-01-01T09:00:00Z", "end": "2030-02-01T09:00:00Z", "groups": "2"}
    start |= {"pairs": "1", "g0.name": "control", "g0.f0": "f", "g0.v0": "A"}
    start |= {"g1.name": "treatment", "g1.f0": "f", "g1.v0": ""}
    refused = await client.post("/ui/delivery/schedules/abtest", data=start)
    assert refused.status_code == 400 and "Choose the variant" in refused.text
    assert 'value="t1"' in refused.text  # kept
    start["g1.v0"] = "B"
    assert (await client.post("/ui/delivery/schedules/abtest", data=start)).status_code == 303
    (step,) = ok(await client.get("/v1/schedules/ab"))["steps"]
    assert step["operation"] == "start_abtest"
    assert step["arguments"]["groups"] == {"control": {"f": "A"}, "treatment": {"f": "B"}}
    clock.now = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    await _apply_due(client)
    page = await client.get("/ui/delivery")
    assert "<option>t1</option>" in page.text  # now in the list of tests to stop
    assert 'datetime="2030-02-01T09:00:00+00:00"' in page.text  # the end, UTC and local
    stop = {"csrf": csrf, "name": "halt", "at": "2030-01-02T09:00:00Z"}
    stop |= {"operation": "stop_abtest", "test": "t1"}
    assert (await client.post("/ui/delivery/schedules", data=stop)).status_code == 303
    clock.now = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    await _apply_due(client)
    assert ok(await client.get("/v1/schedules/halt"))["steps"][0]["status"] == "applied"


async def test_plan_holds_show_in_words(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    await seed_basics(client)
    csrf = csrf_of(await client.get("/ui/delivery"))
    plan = {"csrf": csrf, "feature": "f", "variant": "B", "steps": "5% 1d, 25% 1 h 30 min, 100%"}
    assert (await client.post("/ui/delivery/plans", data=plan)).status_code == 303
    page = await client.get("/ui/delivery")
    assert "5.0% for 1 d, 25.0% for 1 h 30 min, 100.0%" in page.text
    assert "1 day" not in page.text and "1:30:00" not in page.text  # raw timedelta text


def test_hold_words_read_back() -> None:
    for hold in (timedelta(days=1), timedelta(hours=1, minutes=30), timedelta(seconds=45)):
        words = hold_words(hold)
        assert parse_plan_steps(f"5% {words}, 100%")[0].hold == hold
    assert hold_words(timedelta(days=2, seconds=5)) == "2 d 5 s"
    assert hold_words(timedelta(hours=1, minutes=30)) == "1 h 30 min"
    assert hold_words(timedelta(0)) == "0 s"
