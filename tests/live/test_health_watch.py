"""The live A/B tests' health, checked at an interval, and its Prometheus gauges."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import generate_latest

from flaggery.engine import build_snapshot
from flaggery.engine.exposures import Exposure
from flaggery.http.metrics import Metrics
from flaggery.live.health_watch import HealthWatch
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock

GROUPS = {"control": {"f": "off"}, "treatment": {"f": "on"}}


async def seed(store: AsyncFlaggery, clock: FakeClock) -> None:
    await store.increase_buckets(10)
    await store.add_subjects([(i, 1) for i in range(200)])
    await store.add_feature("f")
    await store.add_feature("g")
    await store.add_variant("on", "g")
    await store.add_variant("on", "f")
    await store.add_variant("off", "f", make_default=True)
    await store.add_abtest("stale", None, clock.now + timedelta(days=7), GROUPS)
    await store.add_abtest(
        "later",
        clock.now + timedelta(days=1),
        clock.now + timedelta(days=7),
        {"x": {"g": "on"}, "y": {"g": "on"}},
    )


def exposition(metrics: Metrics) -> str:
    return (
        generate_latest(metrics.abtest_state).decode()
        + generate_latest(metrics.abtest_sequential_p).decode()
    )


async def test_live_tests_get_gauges_and_a_red_test_shows_red(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store, clock)
    # A stale client shows everyone 'control': the split is far from the allocation's.
    await store.record_exposures(
        [Exposure(str(i), "stale", "control", clock.now) for i in range(200)]
    )
    watch = HealthWatch(store.database, lambda: build_snapshot(state, clock.now), clock)
    state = await load_state(store.database)
    await watch.check()
    assert sorted(watch.latest) == ["stale"]  # 'later' has not started
    assert watch.latest["stale"].state == "red"
    metrics = Metrics()
    metrics.sample_abtests(watch.latest)
    text = exposition(metrics)
    assert 'flaggery_abtest_health_state{test="stale"} 2.0' in text
    p = watch.latest["stale"].populations[0].sequential_p
    assert f'flaggery_abtest_srm_sequential_p{{test="stale"}} {p!r}' in text
    clock.advance(days=8)  # both tests have ended: no live test, no gauge
    await watch.check()
    metrics.sample_abtests(watch.latest)
    assert watch.latest == {} and "stale" not in exposition(metrics)


async def test_a_red_test_with_auto_stop_stops_itself_and_pauses_its_plans(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store, clock)
    await store.set_abtest_auto_stop("stale", True)
    assert (await store.get_abtest("stale")).auto_stop
    # A plan ramps 'on', which the test's treatment sets; a plan on 'g' is not the test's.
    await store.create_plan("f", "on", [(0.1, timedelta(hours=1)), (1.0, None)])
    await store.create_plan("g", "on", [(0.1, timedelta(hours=1)), (1.0, None)])
    await store.record_exposures(
        [Exposure(str(i), "stale", "control", clock.now) for i in range(200)]
    )
    state = await load_state(store.database)
    watch = HealthWatch(
        store.database, lambda: build_snapshot(state, clock.now), clock, stopper=store
    )
    await watch.check()
    stopped = await store.get_abtest("stale")
    assert stopped.end <= clock.now
    (last,) = (await store.changes(test="stale")).changes[-1:]
    assert last.operation == "stop_abtest"
    assert last.actor is not None and last.actor.startswith("auto_stop: sample ratio mismatch")
    assert (await store.get_plan("f")).status == "paused"
    assert "sample ratio mismatch" in (await store.get_plan("f")).note
    assert (await store.get_plan("g")).status == "active"
    revision = await store.revision()
    await watch.check()  # still red: the paused plan is not written again
    assert await store.revision() == revision


async def test_without_auto_stop_or_on_a_replica_a_red_test_keeps_running(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store, clock)
    await store.record_exposures(
        [Exposure(str(i), "stale", "control", clock.now) for i in range(200)]
    )
    state = await load_state(store.database)
    watch = HealthWatch(
        store.database, lambda: build_snapshot(state, clock.now), clock, stopper=store
    )
    await watch.check()
    await store.set_abtest_auto_stop("stale", True)
    state = await load_state(store.database)
    replica = HealthWatch(store.database, lambda: build_snapshot(state, clock.now), clock)
    await replica.check()
    assert watch.latest["stale"].state == replica.latest["stale"].state == "red"
    assert (await store.get_abtest("stale")).end > clock.now
