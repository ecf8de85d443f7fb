"""The kill switch kills: a state of the feature applied as resolution's last layer, so every
subject gets ``__DISABLE__`` whatever its groups and tests, and turning it off restores
exactly what was there (default, rollout with its buckets, overrides, tests), one write each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flaggery import errors
from flaggery.core import Flaggery
from flaggery.engine import build_snapshot
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.store.test_lifecycle import assert_one_write, change_log_rows, seed

TEST_GROUPS = {"control": {"f": "off"}, "treatment": {"f": "on"}}


async def _everything_on_f(store: AsyncFlaggery, clock: FakeClock) -> None:
    """f with a default, a 50% rollout, a live A/B test and a group override."""
    await seed(store)
    await store.add_variant("beta", "f")
    await store.add_rollout("on", "f")
    await store.set_rollout_proportion("f", 0.5)
    await store.add_abtest("t", None, clock.now + timedelta(days=7), TEST_GROUPS)
    await store.add_group("testers")
    await store.add_group_override("testers", "f", "beta")
    for subject in (1, 2, 3):
        await store.add_subject_to_group(subject, "testers")


async def _all_variants(store: AsyncFlaggery) -> dict[int, str]:
    return {i: (await store.get_subject_variants(i))["f"] for i in range(100)}


async def test_a_killed_feature_is_disabled_for_everyone(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _everything_on_f(store, clock)
    before = await _all_variants(store)
    assert {"on", "off", "beta"} == set(before.values())  # test, default and override all seen
    rollout = await store.get_rollout("f")
    revision, rows = await store.revision(), await change_log_rows(store)

    await store.kill_switch("f")

    await assert_one_write(store, revision, rows)
    assert set((await _all_variants(store)).values()) == {"__DISABLE__"}
    why = (await store.explain(1)).features["f"]
    assert (why.variant, why.source) == ("__DISABLE__", "killed")
    # A fresh load (a replica starting now) says the same, unknown subjects included.
    snapshot = build_snapshot(await load_state(store.database), clock.now)
    assert {snapshot.variants(i)["f"] for i in range(100)} == {"__DISABLE__"}
    assert snapshot.defaults["f"] == "__DISABLE__"
    for key in ("someone@example.com", "42", "999"):  # any targeting key, hashed or not
        assert snapshot.evaluate(key).flags["f"] == "__DISABLE__"
        assert snapshot.explain_key(key).features["f"].source == "killed"
    assert (await store.get_feature("f")).killed
    # Nothing underneath was rewritten.
    assert await store.get_rollout("f") == rollout
    assert (await store.get_feature("f")).default_variant == "off"
    assert (await store.get_group("testers")).overrides == {"f": "beta"}

    await store.kill_switch("f")  # on already: nothing to write
    assert await store.revision() == revision + 1

    await store.unkill("f")

    await assert_one_write(store, revision + 1, rows + 1)
    assert await _all_variants(store) == before
    assert not (await store.get_feature("f")).killed
    snapshot = build_snapshot(await load_state(store.database), clock.now)
    assert {i: snapshot.variants(i)["f"] for i in range(100)} == before
    assert snapshot.evaluate("someone@example.com").flags["f"] != "__DISABLE__"
    await store.unkill("f")  # off already
    assert await store.revision() == revision + 2


async def test_changes_made_while_killed_apply_after_unkill(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _everything_on_f(store, clock)
    await store.kill_switch("f")
    await store.set_rollout_proportion("f", 1.0)
    clock.advance(hours=1)
    await store.stop_abtest("t")
    await store.rm_group_override("testers", "f")
    assert set((await _all_variants(store)).values()) == {"__DISABLE__"}
    await store.unkill("f")
    assert set((await _all_variants(store)).values()) == {"on"}


async def test_a_feature_without_default_or_disabling_variant_can_be_killed(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await store.add_feature("bare")
    await store.kill_switch("bare")
    snapshot = build_snapshot(await load_state(store.database), clock.now)
    assert dict(snapshot.defaults) == {"bare": "__DISABLE__"}
    assert (await store.get_feature("bare")).variants == []  # no variant was added
    await store.unkill("bare")
    snapshot = build_snapshot(await load_state(store.database), clock.now)
    assert dict(snapshot.defaults) == {}


async def test_kill_switch_errors(store: AsyncFlaggery) -> None:
    revision = await store.revision()
    with pytest.raises(errors.FeatureNotFound):
        await store.kill_switch("missing")
    with pytest.raises(errors.FeatureNotFound):
        await store.unkill("missing")
    assert await store.revision() == revision


def test_the_sync_facade_kills_and_unkills_on_condition(db_url: str) -> None:
    with Flaggery.from_db_url(db_url) as flaggery:
        flaggery.increase_buckets(2)
        flaggery.add_subject(1)
        flaggery.add_feature("f")
        flaggery.add_variant("on", "f", make_default=True)
        seen = flaggery.revision()
        flaggery.kill_switch("f", if_revision=seen)
        assert flaggery.get_subject_variants(1) == {"f": "__DISABLE__"}
        with pytest.raises(errors.EntityChanged, match="kill_switch"):
            flaggery.unkill("f", if_revision=seen)
        flaggery.unkill("f", if_revision=flaggery.revision())
        assert flaggery.get_subject_variants(1) == {"f": "on"}
