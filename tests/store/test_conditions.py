"""Conditional writes in Python (issue 18, item 18): ``if_revision=`` refuses a write whose
entity changed after that revision, with what changed, also when the change is an earlier
write of the same group-commit batch. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flaggery import errors
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.retention import Retention, prune_change_log
from tests.store.test_lifecycle import seed


async def test_a_change_since_the_revision_refuses_the_write(store: AsyncFlaggery) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    seen = await store.revision()
    await store.add_feature("other")  # another entity: no conflict
    await store.set_rollout_proportion("f", 0.5, if_revision=seen)
    with pytest.raises(errors.EntityChanged, match=r"set_rollout_proportion by \w+"):
        await store.set_rollout_proportion("f", 0.3, if_revision=seen)
    assert (await store.get_rollout("f")).proportion == 0.5
    now = await store.revision()
    await store.set_rollout_proportion("f", 0.3, if_revision=now)
    with pytest.raises(errors.EntityChanged):
        await store.set_default_feature_variant("f", "on", if_revision=now)
    with pytest.raises(errors.EntityChanged):
        await store.rm_feature("f", if_revision=now)
    assert (await store.get_feature("f")).default_variant == "off"


async def test_an_earlier_write_of_the_same_batch_counts(store: AsyncFlaggery) -> None:
    """Both writes start before either runs, so they share one transaction: the kill switch
    is not in the change-log table yet when the rollout write checks its condition."""
    await seed(store)
    await store.add_rollout("on", "f")
    seen = await store.revision()
    results = await asyncio.gather(
        store.kill_switch("f"),
        store.set_rollout_proportion("f", 0.3, if_revision=seen),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], errors.EntityChanged), results
    assert "kill_switch" in str(results[1])
    assert (await store.get_rollout("f")).proportion == 0.0


async def test_groups_and_tests(store: AsyncFlaggery) -> None:
    await seed(store)
    await store.add_group("g")
    seen = await store.revision()
    await store.add_subject_to_group(1, "g")  # membership: not the group's definition
    await store.add_group_override("g", "f", "on", if_revision=seen)
    with pytest.raises(errors.EntityChanged, match="add_group_override"):
        await store.rm_group("g", if_revision=seen)
    with pytest.raises(errors.EntityChanged, match="add_group_override"):
        await store.kill_switch("f", if_revision=seen)  # the override touched f too
    assert await store.list_groups() == ["g"]


async def test_bad_or_unverifiable_revisions(store: AsyncFlaggery) -> None:
    await seed(store)
    head = await store.revision()
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(errors.ValidationError, match="if_revision must be a revision"):
            await store.kill_switch("f", if_revision=bad)  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationError, match="after the database's latest revision"):
        await store.kill_switch("f", if_revision=head + 1)
    await store.kill_switch("f", if_revision=head)  # nothing since: goes through
    for _ in range(3):
        await store.add_feature(f"x{_}")
    await prune_change_log(store.database, Retention(revisions=2))
    with pytest.raises(errors.EntityChanged, match="no longer holds"):
        await store.unkill("f", if_revision=head)
    assert (await store.get_feature("f")).killed
    with pytest.raises(errors.FeatureNotFound):  # the entity's own error comes first
        await store.unkill("missing", if_revision=head)


async def test_a_changed_test_is_named_in_the_message(store: AsyncFlaggery) -> None:
    await seed(store)
    start = store.database.clock() + timedelta(days=1)
    groups = {"control": {"f": "off"}, "treatment": {"f": "on"}}
    await store.add_abtest("t", start, start + timedelta(days=1), groups)
    seen = await store.revision()
    await store.add_feature("unrelated")
    await store.increase_buckets(2)  # t takes its share of the new buckets: a change to t
    with pytest.raises(errors.EntityChanged, match=r"A/B test 't' changed since .*increase_"):
        await store.rm_abtest("t", if_revision=seen)
    await store.rm_abtest("t", if_revision=await store.revision())
