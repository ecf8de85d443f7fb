"""Incremental application of changes equals a full build of the resulting state."""

from __future__ import annotations

from array import array
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import ChangeGap, Snapshot, build_snapshot
from flaggery.engine.model import (
    BucketFact,
    Change,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    Rollout,
    RolloutFact,
    State,
    Subject,
    SubjectFact,
    SubjectsFact,
    decode_facts,
    encode_facts,
)
from flaggery.engine.steps import STEP_KEYS, STEP_PATCHES, Steps
from flaggery.errors import SubjectNotFound
from tests.engine.reference import assert_resolves_like_naive
from tests.engine.state_patch import apply_changes
from tests.engine.strategies import changes, make_state, minute, states, times


def assert_same_snapshot(incremental: Snapshot, state: State, now: datetime) -> None:
    full = build_snapshot(state, now)
    assert incremental.revision == full.revision == state.revision
    assert incremental.next_boundary == full.next_boundary
    assert incremental.config == full.config
    assert_resolves_like_naive(incremental, state, now)
    for subject_id in state.subjects.ids:
        assert incremental.flags_json(subject_id) == full.flags_json(subject_id)


@given(st.data(), states(), times, times)
def test_applying_changes_equals_building_the_resulting_state(
    data: st.DataObject, state: State, built: datetime, now: datetime
) -> None:
    log = data.draw(changes(state))
    snapshot = build_snapshot(state, built).apply(log, now)
    final = apply_changes(state, log)
    assert_same_snapshot(snapshot, final, now)
    for deleted in set(state.subjects.ids) - set(final.subjects.ids):
        with pytest.raises(SubjectNotFound):
            snapshot.variants(deleted)


@given(st.data(), states(), times)
def test_applying_changes_one_at_a_time_equals_all_at_once(
    data: st.DataObject, state: State, now: datetime
) -> None:
    log = data.draw(changes(state))
    snapshot = build_snapshot(state, now)
    for change in log:
        snapshot = snapshot.apply([change], now)
        state = apply_changes(state, [change])
        assert_same_snapshot(snapshot, state, now)


BASE = make_state(
    revision=5,
    buckets=[1, 2],
    subjects={1: Subject(weight=1, bucket=1), 2: Subject(weight=1, bucket=2, groups=("beta",))},
    features=[Feature("checkout", ("A", "B"), default="A")],
    groups=[Group("beta", {"checkout": "B"})],
)


def change(revision: int, *facts: Fact) -> Change:
    return Change(revision=revision, operation="test", facts=facts)


def test_a_gap_in_revisions_asks_for_a_full_reload() -> None:
    snapshot = build_snapshot(BASE, minute(0))
    with pytest.raises(ChangeGap, match="Expected the change of revision 6, got 7"):
        snapshot.apply([change(7)], minute(0))
    with pytest.raises(ChangeGap):
        snapshot.apply([change(6), change(8)], minute(0))


def test_changes_already_applied_are_skipped() -> None:
    snapshot = build_snapshot(BASE, minute(0))
    assert snapshot.apply([change(4), change(5)], minute(0)) is snapshot
    moved = snapshot.apply([change(5, SubjectFact(1, None)), change(6)], minute(0))
    assert moved.revision == 6
    assert moved.variant(1, "checkout") == "A"


def test_subject_changes_reuse_every_resolved_view() -> None:
    snapshot = build_snapshot(BASE, minute(0))
    added = snapshot.apply(
        [change(6, SubjectFact(3, Subject(weight=2, bucket=2)), BucketFact(3))], minute(0)
    )
    assert added.variants(1) is snapshot.variants(1)
    assert added.variants(2) is snapshot.variants(2)
    assert added.subject(3).bucket == 2
    newcomer = added.apply([change(7, SubjectFact(4, Subject(weight=1, bucket=3)))], minute(0))
    assert newcomer.variants(4) == {"checkout": "A"}


def test_configuration_changes_keep_the_subject_index() -> None:
    snapshot = build_snapshot(BASE, minute(0))
    changed = snapshot.apply(
        [change(6, FeatureFact("checkout", Feature("checkout", ("A", "B"), default="B")))],
        minute(0),
    )
    assert changed._index is snapshot._index
    assert changed.variants(1) == {"checkout": "B"}


def test_a_group_change_resolves_again_only_the_views_holding_the_group() -> None:
    snapshot = build_snapshot(BASE, minute(0))
    log = [change(6, GroupFact("beta", Group("beta", {"checkout": "A"})))]
    changed = snapshot.apply(log, minute(0))
    assert changed.variants(1) is snapshot.variants(1)  # subject 1 is in no group: kept
    assert changed.variants(2) == {"checkout": "A"}  # subject 2 is in beta: resolved again
    assert_same_snapshot(changed, apply_changes(BASE, log), minute(0))


def test_deleting_a_group_with_its_memberships() -> None:
    snapshot = build_snapshot(BASE, minute(0)).apply(
        [change(6, GroupFact("beta", None), SubjectFact(2, Subject(weight=1, bucket=2)))],
        minute(0),
    )
    assert snapshot.variants(2) == {"checkout": "A"}
    assert snapshot.subject(2).groups == []


def _run_steps(steps: Steps[Snapshot]) -> tuple[Snapshot, int]:
    """The result of `steps` and how many times they yielded."""
    yielded = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, yielded
        yielded += 1


def test_new_views_are_resolved_in_steps_of_bounded_size() -> None:
    """A caller on an event loop serves between steps: 100 new buckets' views resolve in 4
    steps of at most STEP_KEYS, and the result is the snapshot `apply` gives."""
    few = make_state(
        revision=5,
        buckets=[0],
        subjects={1: Subject(weight=1, bucket=0)},
        features=[Feature("checkout", ("A", "B"), default="A")],
    )
    log = [change(6, *(BucketFact(bucket) for bucket in range(1, 101)))]
    stepped, yielded = _run_steps(build_snapshot(few, minute(0)).apply_in_steps(log, minute(0)))
    assert yielded == -(-100 // STEP_KEYS) - 1
    assert stepped.view_count == 101
    assert_same_snapshot(stepped, apply_changes(few, log), minute(0))


def test_a_configuration_change_patches_the_views_in_steps_of_bounded_size() -> None:
    """A rollout over many views re-resolves its feature in them STEP_PATCHES views a step."""
    count = 2 * STEP_PATCHES + 1
    many = make_state(
        revision=5,
        buckets=range(count),
        subjects={i: Subject(weight=1, bucket=i) for i in range(count)},
        features=[Feature("checkout", ("A", "B"), default="A")],
    )
    snapshot = build_snapshot(many, minute(0))
    rollout = Rollout("checkout", "B", 0.5, frozenset(range(0, count, 2)))
    log = [change(6, RolloutFact("checkout", rollout))]
    stepped, yielded = _run_steps(snapshot.apply_in_steps(log, minute(0)))
    assert yielded == 2
    assert_same_snapshot(stepped, apply_changes(many, log), minute(0))
    assert stepped.variant(2, "checkout") == "B" and stepped.variant(3, "checkout") == "A"


def test_a_subject_change_takes_one_step() -> None:
    steps = build_snapshot(BASE, minute(0)).apply_in_steps(
        [change(6, SubjectFact(1, Subject(weight=3, bucket=2)))], minute(0)
    )
    with pytest.raises(StopIteration):
        next(steps)


def test_a_bulk_add_read_back_from_its_json_applies_like_its_subjects_one_by_one() -> None:
    """The change log and the event stream carry a SubjectsFact as JSON: decoded, it holds the
    same columns, and applying it equals applying one SubjectFact per subject."""
    state = make_state(buckets=(1, 2, 3), subjects={i: Subject(1, 1) for i in range(1, 6)})
    ids, weights, buckets = array("q", range(6, 40)), array("q", [1, 2] * 17), array("q", [2] * 34)
    fact = decode_facts(encode_facts([SubjectsFact.of(ids, weights, buckets)]))[0]
    assert isinstance(fact, SubjectsFact) and fact.columns() == (ids, weights, buckets)
    one_by_one = tuple(
        SubjectFact(i, Subject(w, b)) for i, w, b in zip(ids, weights, buckets, strict=True)
    )
    built = build_snapshot(state, minute(0))
    bulk = built.apply([Change(2, "add_subjects", (fact,))], minute(0))
    single = built.apply([Change(2, "add_subjects", one_by_one)], minute(0))
    assert_same_snapshot(
        bulk, apply_changes(state, [Change(2, "add_subjects", one_by_one)]), minute(0)
    )
    assert [bulk.subject(i) for i in ids] == [single.subject(i) for i in ids]


def test_a_subject_removed_after_its_bulk_add_in_the_same_catch_up_is_gone() -> None:
    """A bulk add, then a write removing one of its subjects, applied together: the order of
    the facts decides (the bulk add is then taken one subject at a time)."""
    state = make_state(buckets=(1, 2), subjects={1: Subject(1, 1)})
    added = SubjectsFact.of(array("q", [10, 11, 12]), array("q", [3, 4, 5]), array("q", [2, 1, 2]))
    log = [Change(2, "add_subjects", (added,)), Change(3, "rm_subject", (SubjectFact(11, None),))]
    snapshot = build_snapshot(state, minute(0)).apply(log, minute(0))
    with pytest.raises(SubjectNotFound):
        snapshot.variants(11)
    assert [snapshot.subject(i).weight for i in (1, 10, 12)] == [1, 3, 5]
    assert_same_snapshot(snapshot, apply_changes(state, log), minute(0))
