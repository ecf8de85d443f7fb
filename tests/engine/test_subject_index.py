from __future__ import annotations

from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine.columns import patch_sorted_columns
from flaggery.engine.steps import STEP_SLOTS
from flaggery.engine.subject_index import ABSENT, NARROW_SLOTS, Entry, SubjectIndex
from flaggery.errors import SubjectNotFound

ids_strategy = st.one_of(st.integers(-50, 3000), st.integers(-(2**63), 2**63 - 1))
entries = st.tuples(st.integers(0, 100), st.integers(1, 10**12))
wide_entries = st.tuples(
    st.sampled_from([0, 5, 0xFFFE, 0xFFFF, 0x10000, 0xFFFFFFFE]), st.integers(1, 9)
)
contents = st.dictionaries(ids_strategy, entries, max_size=40)
updates_strategy = st.dictionaries(ids_strategy, st.none() | entries, max_size=20)


def index_of(content: dict[int, Entry]) -> SubjectIndex:
    ids = sorted(content)
    return SubjectIndex.build(
        array("q", ids),
        array("I", [content[i][0] for i in ids]),
        array("q", [content[i][1] for i in ids]),
    )


def assert_holds_exactly(index: SubjectIndex, content: dict[int, Entry]) -> None:
    assert len(index) == len(content)
    for subject_id, entry in content.items():
        assert index.entry(subject_id) == entry
        assert index.slot(subject_id) == entry[0]
    ids, slots, weights = index.columns()
    assert list(ids) == sorted(content)
    assert list(zip(slots, weights, strict=True)) == [content[i] for i in sorted(content)]


def test_contiguous_ids_use_the_dense_layout_without_copying() -> None:
    weights = array("q", [5, 6, 7])
    index = SubjectIndex.build(array("q", [10, 11, 12]), array("I", [0, 1, 0]), weights)
    assert index.layout == "dense"
    assert index.entry(11) == (1, 6)
    assert index.dense_slots[1] == 1
    assert index.base == 10


def test_scattered_ids_use_the_sparse_layout() -> None:
    index = index_of({0: (0, 1), 10**12: (1, 2)})
    assert index.layout == "sparse"
    assert index.entry(10**12) == (1, 2)
    assert len(index.dense_slots) == 0
    assert index.base > 2**63  # the hot path's offset is always negative


def test_holes_in_the_dense_layout_are_absent() -> None:
    index = index_of({0: (0, 1), 5: (1, 2)})
    assert index.layout == "dense"
    assert index.dense_slots[3] == ABSENT
    with pytest.raises(SubjectNotFound, match=r"^Subject 3 does not exist\.$"):
        index.slot(3)


@pytest.mark.parametrize("missing", [-1, -(2**63), 2**63 - 1, 2**64, 100, 3])
@pytest.mark.parametrize("content", [{0: (0, 1), 1: (1, 1), 2: (0, 1)}, {0: (0, 1), 2**40: (1, 1)}])
def test_unknown_ids_raise_subject_not_found_never_wrap(
    content: dict[int, Entry], missing: int
) -> None:
    index = index_of(content)
    with pytest.raises(SubjectNotFound, match=f"Subject {missing} does not exist"):
        index.entry(missing)


def test_an_empty_index_finds_nothing() -> None:
    index = index_of({})
    assert len(index) == 0
    with pytest.raises(SubjectNotFound):
        index.slot(0)


@given(contents)
def test_build_holds_exactly_its_content(content: dict[int, Entry]) -> None:
    assert_holds_exactly(index_of(content), content)


@given(contents, st.lists(updates_strategy, max_size=4))
def test_patching_equals_building_from_the_patched_content(
    content: dict[int, Entry], patches: list[dict[int, Entry | None]]
) -> None:
    index = index_of(content)
    for updates in patches:
        index = index.patched(updates)
        for subject_id, entry in updates.items():
            if entry is None:
                content.pop(subject_id, None)
            else:
                content[subject_id] = entry
        assert_holds_exactly(index, content)
        if content:  # patching keeps the layout a fresh build would choose
            assert index.layout == index_of(content).layout


def test_patching_leaves_the_original_untouched() -> None:
    index = index_of({1: (0, 1), 2: (0, 1)})
    patched = index.patched({1: None, 3: (1, 5), 0: (1, 4)})
    assert index.entry(1) == (0, 1)
    assert len(index) == 2
    assert patched.entry(0) == (1, 4)
    with pytest.raises(SubjectNotFound):
        patched.slot(1)


def test_patching_nothing_returns_the_same_index() -> None:
    index = index_of({1: (0, 1)})
    assert index.patched({}) is index


def test_patching_switches_layout_both_ways() -> None:
    dense = index_of({i: (0, 1) for i in range(100)})
    sparse = dense.patched({10**12: (1, 1)})
    assert sparse.layout == "sparse"
    assert sparse.patched({10**12: None}).layout == "dense"


def test_dense_layout_costs_twelve_bytes_per_subject() -> None:
    count = 100_000
    index = index_of({i: (i % 7, 3) for i in range(count)})
    assert index.layout == "dense"
    weights = index.columns()[2]
    assert index.dense_slots.itemsize + weights.itemsize == 12
    assert len(index.dense_slots) == count


def test_patch_sorted_columns_inserts_replaces_and_deletes() -> None:
    ids, (values,) = patch_sorted_columns(
        array("q", [1, 3, 5]), [array("q", [10, 30, 50])], {0: (0,), 3: None, 4: (40,), 5: (55,)}
    )
    assert list(ids) == [0, 1, 4, 5]
    assert list(values) == [0, 10, 40, 55]


@pytest.mark.parametrize("spacing", [1, 10 * STEP_SLOTS], ids=["dense", "sparse"])
def test_renumbering_slots_takes_bounded_steps(spacing: int) -> None:
    """Dropping unused views renumbers every subject's slot; a serving loop gets a turn after
    every STEP_SLOTS of them, and the result is the one-piece renumbering's."""
    count = 2 * STEP_SLOTS + 5
    ids = array("q", range(1, count * spacing + 1, spacing))
    index = SubjectIndex.build(ids, array("I", [i % 3 for i in range(count)]), array("q", ids))
    assert index.layout == ("dense" if spacing == 1 else "sparse")
    renumbering = {0: 0, 1: 0, 2: 1}
    steps = index.remapped_in_steps(renumbering)
    yielded = 0
    with pytest.raises(StopIteration) as done:
        while True:
            next(steps)
            yielded += 1
    assert yielded == 2
    remapped = done.value.value
    assert remapped.columns() == index.remapped(renumbering).columns()
    assert remapped.entry(ids[2]) == (1, ids[2]) and remapped.entry(ids[4]) == (0, ids[4])


def narrow_index_of(content: dict[int, Entry]) -> SubjectIndex:
    ids = sorted(content)
    return SubjectIndex.build(
        array("q", ids),
        array("H", [content[i][0] for i in ids]),
        array("q", [content[i][1] for i in ids]),
    )


@given(
    contents,
    st.lists(st.dictionaries(ids_strategy, st.none() | wide_entries, max_size=8), max_size=4),
)
def test_a_narrow_slot_column_holds_its_content_and_widens_for_a_slot_that_does_not_fit(
    content: dict[int, Entry], patches: list[dict[int, Entry | None]]
) -> None:
    """Issue 25 goal 6: two bytes a slot while the views fit; patching or renumbering in a
    slot of 65,535 or more widens the column (holes stay holes), never truncates it."""
    index = narrow_index_of(content)
    assert_holds_exactly(index, content)
    for updates in patches:
        index = index.patched(updates)
        for subject_id, entry in updates.items():
            if entry is None:
                content.pop(subject_id, None)
            else:
                content[subject_id] = entry
        assert_holds_exactly(index, content)
    slots = {slot for slot, _ in content.values()}
    if all(slot <= 0x10000 for slot in slots):
        renumbered = index.remapped({slot: slot + NARROW_SLOTS for slot in slots})
        moved = {i: (slot + NARROW_SLOTS, weight) for i, (slot, weight) in content.items()}
        assert_holds_exactly(renumbered, moved)


def test_the_snapshot_of_ten_thousand_subjects_costs_ten_bytes_a_subject() -> None:
    from flaggery.engine import build_snapshot
    from flaggery.engine.model import Subject
    from tests.engine.strategies import T0, make_state

    state = make_state(buckets=[1, 2], subjects={i: Subject(1, 1 + i % 2) for i in range(10_000)})
    index = build_snapshot(state, T0)._index
    assert index.layout == "dense"
    assert index.dense_slots.typecode == "H"
    assert index.dense_slots.itemsize + index.columns()[2].itemsize == 10


def test_a_narrow_column_widens_once_the_views_reach_its_hole_marker() -> None:
    index = narrow_index_of({0: (1, 1), 5: (2, 1)})
    assert index.with_room_for(NARROW_SLOTS - 1) is index
    wide = index.with_room_for(NARROW_SLOTS)
    assert wide.dense_slots.typecode == "I"
    assert wide.dense_slots[3] == ABSENT  # the hole is still a hole, beyond every view
    assert_holds_exactly(wide, {0: (1, 1), 5: (2, 1)})


@given(
    contents,
    st.integers(-50, 3000),
    st.integers(0, 60),
    st.lists(entries, max_size=40),
    st.booleans(),
)
def test_adding_subjects_equals_building_from_the_added_content(
    content: dict[int, Entry], first: int, gap: int, added: list[Entry], after_the_window: bool
) -> None:
    """An import batch appended past the window (with or without holes before it) or landing
    anywhere else holds exactly the old content plus the batch, whichever path it takes."""
    if after_the_window:
        first = max(content, default=first) + 1 + gap
    new = {first + offset: entry for offset, entry in enumerate(added) if first + offset < 2**63}
    new = {subject_id: entry for subject_id, entry in new.items() if subject_id not in content}
    ids = sorted(new)
    index = index_of(content).with_added(
        array("q", ids), array("H", [new[i][0] for i in ids]), array("q", [new[i][1] for i in ids])
    )
    assert_holds_exactly(index, content | new)


def test_an_import_batch_past_a_dense_window_stays_dense_and_shares_no_array() -> None:
    before = index_of({i: (i % 3, i) for i in range(1, 1001)})
    after = before.with_added(
        array("q", range(1001, 2001)), array("H", [7] * 1000), array("q", [2] * 1000)
    )
    assert after.layout == "dense" and after.base == before.base
    assert after.entry(1500) == (7, 2) and after.entry(1000) == (1000 % 3, 1000)
    with pytest.raises(SubjectNotFound):
        before.entry(1500)  # the old index is untouched
    assert after.dense_slots is not before.dense_slots


@pytest.mark.parametrize("first", [1, 15])
def test_ids_from_a_small_first_id_get_a_window_from_zero(first: int) -> None:
    """Ids from 1 (a database's) or any first id within 1/64 of the count: the window starts
    at 0 with holes below, holds exactly the same, and gives its columns back as they were."""
    count = 1000
    content = {first + i: (i % 5, i + 1) for i in range(count)}
    index = index_of(content)
    assert index.layout == "dense"
    assert index.base == 0
    assert len(index.dense_slots) == first + count
    assert_holds_exactly(index, content)
    for missing in range(-1, first):
        with pytest.raises(SubjectNotFound):
            index.entry(missing)
    patched = index.patched({first: None, first + count: (9, 9)})
    del content[first]
    assert_holds_exactly(patched, content | {first + count: (9, 9)})


def test_a_first_id_beyond_a_64th_of_the_count_keeps_its_base() -> None:
    index = index_of({i: (0, 1) for i in range(20, 1000)})
    assert index.base == 20


def test_a_patch_copies_only_the_columns_it_changes() -> None:
    """A weight change shares the slot column, a move to another view the weights; the
    original keeps its content either way."""
    index = SubjectIndex.build(array("q", [1, 2, 3]), array("H", [0, 1, 0]), array("q", [5, 6, 7]))
    reweighted = index.patched({2: (1, 9)})
    assert reweighted.dense_slots is index.dense_slots
    assert (reweighted.entry(2), index.entry(2)) == ((1, 9), (1, 6))
    moved = index.patched({3: (2, 7)})
    assert moved.dense_slots is not index.dense_slots
    assert (moved.entry(3), index.entry(3)) == ((2, 7), (0, 7))
    assert moved.columns()[2] is index.columns()[2]
    removed = index.patched({1: None})
    assert removed.dense_slots is not index.dense_slots and index.entry(1) == (0, 5)
    with pytest.raises(SubjectNotFound):
        removed.entry(1)


def test_a_batch_starting_at_the_largest_id_is_added_not_overflowed() -> None:
    # A dense index's append path compared the batch with a range from its first id: from
    # 2**63 - 1 that range left int64 (OverflowError, found by the apply property test).
    index = SubjectIndex.build(array("q", [1, 2, 3]), array("B", [0, 1, 0]), array("q", [1] * 3))
    added = index.with_added(array("q", [2**63 - 1, 5]), array("B", [1, 1]), array("q", [2, 2]))
    assert added.columns()[0].tolist() == [1, 2, 3, 5, 2**63 - 1]
