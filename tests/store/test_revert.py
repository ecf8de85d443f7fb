"""History in words and revert (issue 21): each write records what it replaced, History says
before -> after, and a change is reverted in one write, previewed first, refused when a later
change touched the same entity. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from flaggery.core import Flaggery
from flaggery.errors import ChangeNotFound, RevertRefused
from flaggery.store.actor import acting_as
from flaggery.store.repository import AsyncFlaggery


async def _rollout_at(store: AsyncFlaggery, percent: float) -> None:
    await store.set_rollout_proportion("checkout", percent / 100)


async def _seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(20)
    await store.add_subjects([(sub_id, 1) for sub_id in range(1, 41)])
    await store.add_feature("checkout")
    await store.add_variant("old_flow", "checkout", make_default=True)
    await store.add_variant("new_flow", "checkout")
    await store.add_rollout("new_flow", "checkout")


async def _last(store: AsyncFlaggery) -> int:
    return await store.revision()


async def test_history_says_before_and_after(store: AsyncFlaggery) -> None:
    await _seed(store)
    await _rollout_at(store, 10)
    with acting_as("pm"):
        await _rollout_at(store, 50)
    await store.set_default_feature_variant("checkout", "new_flow")
    await store.add_group("beta")
    await store.add_group_override("beta", "checkout", "new_flow")
    await store.set_subject_weight(3, 5)
    await store.add_subject_to_group(3, "beta")
    page = await store.history(limit=6)
    words = [change.sentences for change in page.changes]
    assert words == [
        ("Subject 3: joined beta",),
        ("Subject 3: weight 1 -> 5",),
        ("Group beta: override of checkout none -> new_flow",),
        ("Group beta created",),
        ("Feature checkout: default old_flow -> new_flow",),
        ("Rollout of checkout: new_flow 10% -> 50%",),
    ]
    assert page.changes[-1].actor == "pm"


async def test_a_rollout_reverted_gets_exactly_its_old_buckets(store: AsyncFlaggery) -> None:
    await _seed(store)
    await _rollout_at(store, 10)
    at_ten = (await store.get_rollout("checkout")).buckets
    variants_at_ten = {s: (await store.get_subject_variants(s))["checkout"] for s in range(1, 41)}
    await _rollout_at(store, 50)
    raised = await _last(store)
    preview = await store.preview_revert(raised)
    assert preview.sentences == ("Rollout of checkout: new_flow 50% -> 10%",)
    assert preview.written is None
    assert (await store.get_rollout("checkout")).proportion == 0.5  # a preview writes nothing
    assert await _last(store) == raised
    done = await store.revert(raised)
    assert done.sentences == preview.sentences
    assert done.written == raised + 1 == await _last(store)
    rollout = await store.get_rollout("checkout")
    assert (rollout.proportion, rollout.buckets) == (0.1, at_ten)
    assert {
        s: (await store.get_subject_variants(s))["checkout"] for s in range(1, 41)
    } == variants_at_ten
    (change,) = (await store.history(limit=1)).changes
    assert change.operation == f"revert {raised}"
    assert change.sentences == ("Rollout of checkout: new_flow 50% -> 10%",)


async def test_a_later_change_to_the_same_entity_refuses_the_revert(store: AsyncFlaggery) -> None:
    await _seed(store)
    await _rollout_at(store, 10)
    ten = await _last(store)
    with acting_as("pm"):
        await _rollout_at(store, 50)
    await store.add_feature("unrelated")  # another entity: no conflict
    with pytest.raises(
        RevertRefused, match=rf"revision {ten + 1} \(set_rollout_proportion by pm\)"
    ):
        await store.preview_revert(ten)
    with pytest.raises(RevertRefused, match="the rollout of checkout"):
        await store.revert(ten)
    assert (await store.get_rollout("checkout")).proportion == 0.5
    await store.revert(ten + 1)  # the latest change reverts; then the earlier one can
    await store.revert(ten + 1 + 2)  # the revert itself is a change: reverted, 50% again
    assert (await store.get_rollout("checkout")).proportion == 0.5


async def test_feature_group_and_subject_changes_revert(store: AsyncFlaggery) -> None:
    await _seed(store)
    await store.add_group("beta")
    await store.set_variant_value("new_flow", "checkout", {"color": "red"})
    await store.kill_switch("checkout")
    killed = await _last(store)
    await store.add_group_override("beta", "checkout", "new_flow")
    override = await _last(store)
    await store.add_subject_to_group(7, "beta")
    joined = await _last(store)
    await store.revert(killed)
    assert (await store.get_feature("checkout")).killed is False
    await store.revert(override)
    assert (await store.get_group("beta")).overrides == {}
    await store.revert(joined)
    assert (await store.get_group("beta")).subjects == []
    words = [c.sentences for c in (await store.history(limit=3)).changes]
    assert words == [
        ("Subject 7: left beta",),
        ("Group beta: override of checkout new_flow -> none",),
        ("Feature checkout: kill switch off",),
    ]


async def test_a_removed_variant_and_rollout_come_back(store: AsyncFlaggery) -> None:
    await _seed(store)
    await _rollout_at(store, 25)
    before = await store.get_rollout("checkout")
    await store.rm_rollout("checkout")
    await store.revert(await _last(store))
    after = await store.get_rollout("checkout")
    assert (after.variant, after.proportion) == (before.variant, before.proportion)
    await store.add_variant("spare", "checkout", value=3)
    await store.rm_variant("spare", "checkout")
    await store.revert(await _last(store))
    feature = await store.get_feature("checkout")
    assert "spare" in feature.variants


async def test_what_cannot_be_reverted_says_why(store: AsyncFlaggery) -> None:
    await _seed(store)
    with pytest.raises(ChangeNotFound):
        await store.revert(10_000)
    with pytest.raises(RevertRefused, match="added buckets"):
        await store.revert(1)  # increase_buckets
    await store.add_feature("gone")
    with pytest.raises(RevertRefused, match="does not create or remove features"):
        await store.revert(await _last(store))


def test_the_sync_facade_previews_and_reverts(db_url: str) -> None:
    with Flaggery.from_db_url(db_url) as flaggery:
        flaggery.add_feature("f")
        flaggery.add_variant("A", "f")
        flaggery.add_variant("B", "f", make_default=True)
        flaggery.set_default_feature_variant("f", "A")
        revision = flaggery.revision()
        assert flaggery.preview_revert(revision).sentences == ("Feature f: default A -> B",)
        flaggery.revert(revision)
        assert flaggery.get_feature("f").default_variant == "B"
        assert flaggery.history(limit=1).changes[0].sentences == ("Feature f: default A -> B",)


async def test_a_feature_restored_as_of_a_revision_in_one_write(store: AsyncFlaggery) -> None:
    await _seed(store)
    await store.add_group("beta")
    await store.add_group("gamma")
    await store.add_group_override("gamma", "checkout", "old_flow")
    await _rollout_at(store, 10)
    at_ten = (await store.get_rollout("checkout")).buckets
    then = await _last(store)
    await _rollout_at(store, 60)
    await store.set_default_feature_variant("checkout", "new_flow")
    await store.add_group_override("beta", "checkout", "new_flow")
    await store.rm_group_override("gamma", "checkout")
    await store.add_feature("unrelated")
    preview = await store.preview_restore_feature("checkout", then)
    assert sorted(preview.sentences) == [
        "Feature checkout: default new_flow -> old_flow",
        "Group beta: override of checkout new_flow -> none",
        "Group gamma: override of checkout none -> old_flow",
        "Rollout of checkout: new_flow 60% -> 10%",
    ]
    head = await _last(store)
    done = await store.restore_feature("checkout", then)
    assert done.written == head + 1 == await _last(store)
    assert sorted(done.sentences) == sorted(preview.sentences)
    assert (await store.get_rollout("checkout")).buckets == at_ten
    assert (await store.get_group("gamma")).overrides == {"checkout": "old_flow"}
    assert (await store.get_group("beta")).overrides == {}
    assert (await store.get_feature("checkout")).default_variant == "old_flow"
    again = await store.restore_feature("checkout", then)
    assert (again.sentences, again.written) == ((), None)
    with pytest.raises(RevertRefused, match="does not create or remove features"):
        await store.restore_feature("unrelated", then)  # it did not exist then
