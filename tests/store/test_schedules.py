"""Scheduled changes: each due step is one ordinary write (actor schedule:<name>, in
history), applied once; an edit or a cancel changes pending steps in the same write; a server
that was down applies the latest due state once and says how late."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from flaggery import errors
from flaggery.engine.model import Change, DeliveryFact, FeatureFact, GroupFact, RolloutFact
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.schedules import ScheduledStep
from flaggery.stream.events import change_event
from tests.fakes import FakeClock
from tests.store.test_lifecycle import assert_one_write, change_log_rows, seed


def _at(clock: FakeClock, **delta: float) -> datetime:
    return clock.now + timedelta(**delta)


async def _last_change(store: AsyncFlaggery) -> tuple[str | None, str, tuple[object, ...]]:
    change = (await store.changes(await store.revision() - 1, 1)).changes[-1]
    return change.actor, change.operation, tuple(change.facts)


async def test_a_due_step_is_one_write_by_the_schedule(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    steps = [ScheduledStep(_at(clock, hours=9), "set_rollout", {"feature": "f", "variant": "on"})]
    await store.create_schedule("monday", steps)
    assert (await store.get_subject_variants(1))["f"] == "off"  # this store's snapshot, now
    clock.advance(hours=8, minutes=59)
    assert await store.apply_due() == []
    assert (await store.get_schedule("monday")).steps[0].status == "pending"
    clock.advance(minutes=1)
    revision, rows = await store.revision(), await change_log_rows(store)
    assert await store.apply_due() == ["schedule:monday"]
    await assert_one_write(store, revision, rows)
    actor, operation, facts = await _last_change(store)
    assert (actor, operation) == ("schedule:monday", "apply_schedule")
    assert [type(f) for f in facts] == [RolloutFact, DeliveryFact]  # created, at 0%
    step = (await store.get_schedule("monday")).steps[0]
    assert (step.status, step.applied_revision, step.late_seconds) == ("applied", revision + 1, 0)
    assert await store.apply_due() == []  # once
    # Replicas patch their snapshot from the row (it is caught up through the change log),
    # and the stream sends it as an ordinary change event.
    assert (await store.get_subject_variants(1))["f"] == "off"  # rolled out to 0%
    event = change_event(Change(revision + 1, operation, tuple(facts)))  # type: ignore[arg-type]
    assert event.kind == "change"
    assert '"type":"delivery"' in event.data


async def test_every_operation(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store)
    await store.add_group("testers")
    await store.add_rollout("on", "f")
    end = (clock.now + timedelta(days=7)).isoformat()
    groups = {"control": {"f": "off"}, "treatment": {"f": "on"}}
    plan: list[tuple[str, dict[str, object]]] = [
        ("set_rollout", {"feature": "f", "proportion": 0.5}),
        ("kill_switch", {"feature": "f", "on": True}),
        ("kill_switch", {"feature": "f", "on": False}),
        ("set_default_variant", {"feature": "f", "variant": "on"}),
        ("add_group_override", {"group": "testers", "feature": "f", "variant": "off"}),
        ("rm_group_override", {"group": "testers", "feature": "f"}),
        ("start_abtest", {"test": "t", "end": end, "groups": groups}),
        ("stop_abtest", {"test": "t"}),
    ]
    for number, (operation, arguments) in enumerate(plan, start=1):
        await store.create_schedule(
            f"s{number}", [ScheduledStep(_at(clock, minutes=number), operation, arguments)]
        )
    clock.advance(minutes=1)
    await store.apply_due()
    assert (await store.get_rollout("f")).proportion == 0.5
    clock.advance(minutes=1)
    await store.apply_due()
    assert (await store.get_feature("f")).killed
    for minute in range(3, 9):
        clock.advance(minutes=1)
        assert await store.apply_due() == [f"schedule:s{minute}"]
        _, _, facts = await _last_change(store)
        assert isinstance(facts[0], FeatureFact | GroupFact | RolloutFact) or minute >= 7
        if minute == 7:
            assert (await store.get_abtest("t")).start == clock.now
    assert not (await store.get_feature("f")).killed
    assert (await store.get_feature("f")).default_variant == "on"
    assert (await store.get_abtest("t")).end < clock.now
    statuses = {s.name: s.steps[0].status for s in await store.list_schedules()}
    assert set(statuses.values()) == {"applied"}


async def test_an_edit_moves_a_step_so_it_never_fires_at_its_old_time(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    nine = _at(clock, hours=9)
    await store.create_schedule(
        "s", [ScheduledStep(nine, "set_rollout", {"feature": "f", "proportion": 0.5})]
    )
    await store.edit_schedule(
        "s",
        [ScheduledStep(_at(clock, hours=10), "set_rollout", {"feature": "f", "proportion": 0.7})],
    )
    clock.advance(hours=9, minutes=30)
    assert await store.apply_due() == []
    assert (await store.get_rollout("f")).proportion == 0
    schedule = await store.get_schedule("s")
    assert [(s.step, s.status) for s in schedule.steps] == [(1, "cancelled"), (2, "pending")]
    clock.advance(minutes=30)
    assert await store.apply_due() == ["schedule:s"]
    assert (await store.get_rollout("f")).proportion == 0.7
    cancelled = await store.create_schedule(
        "c", [ScheduledStep(_at(clock, hours=1), "kill_switch", {"feature": "f", "on": True})]
    )
    assert cancelled.next_at == _at(clock, hours=1)
    revision, rows = await store.revision(), await change_log_rows(store)
    assert (await store.cancel_schedule("c")).next_at is None
    await assert_one_write(store, revision, rows)
    clock.advance(hours=2)
    assert await store.apply_due() == []
    assert not (await store.get_feature("f")).killed


async def test_a_server_down_applies_the_latest_due_state_once_and_says_how_late(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    steps = [
        ScheduledStep(_at(clock, hours=h), "set_rollout", {"feature": "f", "proportion": p})
        for h, p in ((1, 0.1), (2, 0.2), (3, 0.3), (30, 1.0))
    ]
    await store.create_schedule("ramp", steps)
    clock.advance(hours=5)  # nothing ran from hour 1 to hour 5
    revision, rows = await store.revision(), await change_log_rows(store)
    assert await store.apply_due() == ["schedule:ramp"]
    await assert_one_write(store, revision, rows)
    assert (await store.get_rollout("f")).proportion == 0.3
    _, _, facts = await _last_change(store)
    delivery = next(f for f in facts if isinstance(f, DeliveryFact))
    assert delivery.late_seconds == timedelta(hours=2).total_seconds()  # the 0.3 step's
    assert "3 due steps in one write" in delivery.detail
    statuses = [s.status for s in (await store.get_schedule("ramp")).steps]
    assert statuses == ["applied", "applied", "applied", "pending"]


async def test_a_refused_step_is_failed_with_its_reason(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.create_schedule(
        "s", [ScheduledStep(_at(clock, hours=1), "kill_switch", {"feature": "gone", "on": True})]
    )
    clock.advance(hours=1)
    revision = await store.revision()
    assert await store.apply_due() == ["schedule:s"]
    assert await store.revision() == revision + 1  # the failure is in the history
    step = (await store.get_schedule("s")).steps[0]
    assert step.status == "failed"
    assert step.error is not None
    assert "FeatureNotFound" in step.error


async def test_concurrent_appliers_apply_a_step_once(
    db_url: str, store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    await store.create_schedule(
        "s", [ScheduledStep(_at(clock, hours=1), "set_rollout", {"feature": "f", "proportion": 1})]
    )
    clock.advance(hours=1)
    others = [AsyncFlaggery.from_db_url(db_url, clock=clock) for _ in range(3)]
    try:
        revision = await store.revision()
        applied = await asyncio.gather(*(o.apply_due() for o in [store, *others]))
    finally:
        for other in others:
            await other.close()
    assert [name for names in applied for name in names] == ["schedule:s"]
    assert await store.revision() == revision + 1


async def test_refusals(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store)
    good = ScheduledStep(_at(clock, hours=1), "kill_switch", {"feature": "f", "on": True})
    with pytest.raises(errors.ValidationError, match="no UTC offset"):
        await store.create_schedule("s", [good._replace(at=datetime(2030, 1, 1))])
    with pytest.raises(errors.ValidationError, match="Unknown operation"):
        await store.create_schedule("s", [good._replace(operation="drop_tables")])
    with pytest.raises(errors.ValidationError, match="missing"):
        await store.create_schedule("s", [good._replace(arguments={"feature": "f"})])
    with pytest.raises(errors.ValidationError, match="proportion"):
        await store.create_schedule(
            "s", [good._replace(operation="set_rollout", arguments={"feature": "f"})]
        )
    await store.create_schedule("s", [good._replace(at=datetime(2030, 1, 2, tzinfo=UTC))])
    with pytest.raises(errors.ScheduleExists):
        await store.create_schedule("s", [good])
    with pytest.raises(errors.ScheduleNotFound):
        await store.cancel_schedule("nope")
