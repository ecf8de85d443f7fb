"""Release plans: a rollout ramped step by step by the clock, each move one write; pause,
resume, rollback (exact: the same buckets), skip; a manual change of the rollout pauses it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from flaggery import errors
from flaggery.engine.model import DeliveryFact, RolloutFact
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.store.test_lifecycle import assert_one_write, change_log_rows, seed

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
RAMP = [(0.1, HOUR), (0.3, DAY), (0.6, DAY), (1.0, None)]


async def _ramp(store: AsyncFlaggery) -> None:
    await seed(store)
    await store.create_plan("f", "on", RAMP)


async def _last_facts(store: AsyncFlaggery) -> tuple[str | None, tuple[object, ...]]:
    page = await store.changes(await store.revision() - 1, 1)
    change = page.changes[-1]
    return change.actor, tuple(change.facts)


async def _buckets(store: AsyncFlaggery) -> list[int]:
    return (await store.get_rollout("f")).buckets


async def test_a_plan_ramps_by_itself_one_write_per_step(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _ramp(store)
    plan = await store.get_plan("f")
    assert (plan.status, plan.step, plan.next_at) == ("active", -1, clock.now)
    revision, rows = await store.revision(), await change_log_rows(store)
    assert await store.advance_due_plans() == ["f"]
    await assert_one_write(store, revision, rows)
    actor, facts = await _last_facts(store)
    assert actor == "plan:f"
    assert [type(f) for f in facts] == [RolloutFact, RolloutFact, DeliveryFact]  # add + set
    rollout = await store.get_rollout("f")
    assert (rollout.variant, rollout.proportion) == ("on", 0.1)
    plan = await store.get_plan("f")
    assert (plan.step, plan.proportion, plan.next_at) == (0, 0.1, clock.now + HOUR)
    assert await store.advance_due_plans() == []  # held for an hour
    clock.advance(minutes=59)
    assert await store.advance_due_plans() == []
    clock.advance(minutes=1)
    assert await store.advance_due_plans() == ["f"]
    assert (await store.get_rollout("f")).proportion == 0.3
    for _ in range(2):
        clock.advance(days=1)
        assert await store.advance_due_plans() == ["f"]
    plan = await store.get_plan("f")
    assert (plan.status, plan.step, plan.next_at) == ("done", 3, None)
    assert (await store.get_rollout("f")).proportion == 1.0
    _, facts = await _last_facts(store)
    assert [f.event for f in facts if isinstance(f, DeliveryFact)] == ["advanced", "done"]


async def test_a_late_plan_advances_one_step_and_says_how_late(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _ramp(store)
    await store.advance_due_plans()
    clock.advance(days=3)  # the admin server was down: steps 2, 3 and 4 all fell due
    assert await store.advance_due_plans() == ["f"]
    plan = await store.get_plan("f")
    assert (plan.step, plan.next_at) == (1, clock.now + DAY)  # no step skipped
    _, facts = await _last_facts(store)
    delivery = next(f for f in facts if isinstance(f, DeliveryFact))
    assert delivery.late_seconds == (3 * DAY - HOUR).total_seconds()


async def test_rollback_is_exact_and_pauses(store: AsyncFlaggery, clock: FakeClock) -> None:
    await _ramp(store)
    await store.advance_due_plans()
    at_ten = await _buckets(store)
    clock.advance(hours=1)
    await store.advance_due_plans()
    clock.advance(days=1)
    await store.advance_due_plans()
    assert len(await _buckets(store)) > len(at_ten)
    revision, rows = await store.revision(), await change_log_rows(store)
    plan = await store.rollback_plan("f", 0)
    await assert_one_write(store, revision, rows)
    assert await _buckets(store) == at_ten
    assert (plan.status, plan.step, plan.next_at) == ("paused", 0, None)
    clock.advance(days=5)
    assert await store.advance_due_plans() == []  # paused: waits for a person
    with pytest.raises(errors.PlanStateConflict):
        await store.rollback_plan("f", 0)
    await store.rollback_plan("f")  # to 0%
    assert await _buckets(store) == []
    assert (await store.get_plan("f")).step == -1


async def test_pause_resume_and_skip(store: AsyncFlaggery, clock: FakeClock) -> None:
    await _ramp(store)
    await store.advance_due_plans()
    revision, rows = await store.revision(), await change_log_rows(store)
    plan = await store.pause_plan("f", "alert HighErrorRate")
    await assert_one_write(store, revision, rows)
    assert (plan.status, plan.next_at) == ("paused", None)
    assert "HighErrorRate" in plan.note
    revision = await store.revision()
    await store.pause_plan("f")  # paused already: nothing written
    assert await store.revision() == revision
    clock.advance(days=2)
    plan = await store.resume_plan("f")
    assert (plan.status, plan.next_at) == ("active", clock.now + HOUR)  # the hold starts again
    plan = await store.skip_plan("f")
    assert (plan.step, plan.next_at) == (1, clock.now + DAY)
    assert (await store.get_rollout("f")).proportion == 0.3
    plan = await store.skip_plan("f", 3)
    assert (plan.status, plan.step) == ("done", 3)
    with pytest.raises(errors.PlanStateConflict):
        await store.skip_plan("f")
    with pytest.raises(errors.PlanStateConflict):
        await store.resume_plan("f")


async def test_a_manual_change_of_the_rollout_pauses_the_plan_in_the_same_write(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _ramp(store)
    await store.advance_due_plans()
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.set_rollout_proportion("f", 0.2)
    await assert_one_write(store, revision, rows)
    _, facts = await _last_facts(store)
    delivery = [f for f in facts if isinstance(f, DeliveryFact)]
    assert [(d.event, "changed by" in d.detail) for d in delivery] == [("paused", True)]
    plan = await store.get_plan("f")
    assert (plan.status, plan.step) == ("paused", 0)
    clock.advance(days=1)
    assert await store.advance_due_plans() == []
    assert (await store.get_rollout("f")).proportion == 0.2


async def test_history_filtered_by_feature_shows_the_plan(store: AsyncFlaggery) -> None:
    await _ramp(store)
    await store.advance_due_plans()
    await store.pause_plan("f")
    page = await store.changes(0, 1000, feature="f")
    events = [
        fact.event
        for change in page.changes
        for fact in change.facts
        if isinstance(fact, DeliveryFact)
    ]
    assert events == ["created", "advanced", "paused"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "1 to 100 steps"),
        ([(0.5, HOUR), (0.2, None)], "only ramps up"),
        ([(0.1, None), (0.2, None)], "positive hold"),
        ([(1.5, None)], "from 0 to 1"),
        ([(0.1, timedelta.max), (1.0, None)], "Step 1's hold must be .* at most 366 days"),
        ([(0.1, -HOUR), (1.0, None)], "Step 1's hold must be a duration above 0"),
    ],
)
async def test_bad_plans_are_refused(
    store: AsyncFlaggery, steps: list[tuple[float, timedelta | None]], message: str
) -> None:
    await seed(store)
    with pytest.raises(errors.InvalidInput, match=message):
        await store.create_plan("f", "on", steps)


async def test_a_plan_ending_past_year_9999_is_refused(store: AsyncFlaggery) -> None:
    """Every instant a plan computes (start + holds) must exist: a start whose holds end past
    9999-12-31 would raise OverflowError when the plan advances (a 500, a stuck applier)."""
    await seed(store)
    late = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(errors.ValidationError, match=r"start .* plus the plan's holds"):
        await store.create_plan("f", "on", [(0.1, timedelta(days=1)), (1.0, None)], late)
    assert await store.list_plans() == []
    made = await store.create_plan("f", "on", [(0.1, timedelta(hours=23)), (1.0, None)], late)
    assert made.next_at == late


async def test_refusals(store: AsyncFlaggery) -> None:
    await seed(store)
    with pytest.raises(errors.VariantNotFound):
        await store.create_plan("f", "nope", RAMP)
    with pytest.raises(errors.ValidationError, match="no UTC offset"):
        await store.create_plan("f", "on", RAMP, datetime(2030, 1, 1))
    await store.create_plan("f", "on", RAMP, datetime(2030, 1, 2, tzinfo=UTC))
    with pytest.raises(errors.PlanExists):
        await store.create_plan("f", "on", RAMP)
    with pytest.raises(errors.PlanNotFound):
        await store.pause_plan("g")
    await store.rm_plan("f")
    assert await store.list_plans() == []


def test_the_sync_facade_drives_plans_and_schedules(db_url: str, clock: FakeClock) -> None:
    from flaggery.core import Flaggery
    from flaggery.store.schedules import ScheduledStep

    with Flaggery.from_db_url(db_url, clock=clock) as flaggery:
        flaggery.increase_buckets(4)
        flaggery.add_subjects([(i, 1) for i in range(8)])
        flaggery.add_feature("f")
        flaggery.add_variant("on", "f")
        flaggery.add_variant("off", "f", make_default=True)
        flaggery.create_plan("f", "on", [(0.5, HOUR), (1.0, None)])
        kill = ScheduledStep(clock.now + HOUR, "kill_switch", {"feature": "f", "on": True})
        flaggery.create_schedule("k", [kill])
        assert flaggery.apply_due() == ["plan:f"]
        clock.advance(hours=1)
        assert flaggery.apply_due() == ["schedule:k", "plan:f"]
        assert flaggery.get_plan("f").status == "done"
        assert flaggery.get_feature("f").killed
        assert flaggery.rollback_plan("f", 0).proportion == 0.5
        assert [s.name for s in flaggery.list_schedules()] == ["k"]


async def test_concurrent_appliers_advance_a_plan_once(
    db_url: str, store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _ramp(store)
    others = [AsyncFlaggery.from_db_url(db_url, clock=clock) for _ in range(3)]
    try:
        revision = await store.revision()
        advanced = await asyncio.gather(*(o.advance_due_plans() for o in [store, *others]))
    finally:
        for other in others:
            await other.close()
    assert [name for names in advanced for name in names] == ["f"]
    assert await store.revision() == revision + 1
    assert (await store.get_plan("f")).step == 0


async def test_a_refused_step_pauses_the_plan_and_the_others_still_advance(
    store: AsyncFlaggery,
) -> None:
    await _ramp(store)
    await store.add_feature("g")
    await store.add_variant("on", "g")
    await store.create_plan("g", "on", RAMP)
    await store.rm_variant("on", "f")  # f has no rollout yet: nothing uses it
    assert await store.advance_due_plans() == ["g"]
    plan = await store.get_plan("f")
    assert (plan.status, plan.step) == ("paused", -1)
    assert "its next step was refused" in plan.note


async def test_a_red_test_pauses_the_plans_of_its_variants(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _ramp(store)
    await store.add_feature("g")
    await store.add_variant("on", "g")
    await store.add_variant("off", "g")
    await store.create_plan("g", "off", RAMP)  # g's plan rolls out a variant the test leaves
    groups = {"control": {"f": "off", "g": "on"}, "treatment": {"f": "on", "g": "on"}}
    await store.add_abtest("t", None, clock.now + DAY, groups)
    assert await store.pause_plans_in_test("t", "sample ratio mismatch") == ["f"]
    plan = await store.get_plan("f")
    assert plan.status == "paused" and "sample ratio mismatch" in plan.note
    assert (await store.get_plan("g")).status == "active"
    revision = await store.revision()
    assert await store.pause_plans_in_test("t", "still red") == []  # nothing written again
    assert await store.revision() == revision
