"""add_subjects_to_group: many members in one transaction, all or nothing, each joining last
as one-by-one joins would, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from flaggery import AsyncFlaggery, errors


async def test_members_join_in_one_write_and_a_refusal_adds_none(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(i, 1) for i in range(1, 7)])
    await store.add_feature("f")
    for variant in ("A", "B", "C"):
        await store.add_variant(variant, "f")
    await store.add_group("early")
    await store.add_group("late")
    await store.add_group_override("early", "f", "B")
    await store.add_group_override("late", "f", "C")
    await store.add_subject_to_group(1, "late")
    before = await store.revision()
    await store.add_subjects_to_group([1, 2, 3], "early")
    assert await store.revision() == before + 1  # one write, one revision
    assert (await store.get_group("early")).subjects == [1, 2, 3]
    assert (await store.get_subject(1)).groups == ["late", "early"]  # joined last
    assert await store.get_subject_variants(1) == {"f": "B"}  # the group joined last wins
    assert await store.get_subject_variants(2) == {"f": "B"}
    with pytest.raises(errors.SubjectAlreadyInGroup, match="Subject 3"):
        await store.add_subjects_to_group([4, 3], "early")
    with pytest.raises(errors.SubjectNotFound, match="Subject 99"):
        await store.add_subjects_to_group([5, 99], "early")
    with pytest.raises(errors.GroupNotFound):
        await store.add_subjects_to_group([5], "nope")
    with pytest.raises(errors.ValidationError, match="more than once"):
        await store.add_subjects_to_group([5, 5], "early")
    with pytest.raises(errors.ValidationError, match="at least one"):
        await store.add_subjects_to_group([], "early")
    assert (await store.get_group("early")).subjects == [1, 2, 3]  # nothing of those
    assert await store.get_subject_variants(4) == {}


async def test_a_bulk_join_reads_as_joins_in_history(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])
    await store.add_group("beta")
    await store.add_subjects_to_group([2, 1], "beta")
    (change,) = (await store.history(limit=1)).changes
    assert change.sentences == ("Subject 2: joined beta", "Subject 1: joined beta")
    await store.revert(change.revision)  # before recorded: one write undoes the bulk join
    assert (await store.get_group("beta")).subjects == []
