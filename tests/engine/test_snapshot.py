from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import Snapshot, build_snapshot
from flaggery.engine.model import AbTest, Feature, Rollout, State, Subject
from flaggery.engine.model import TestGroup as AbTestGroup  # not collected as a test class
from flaggery.errors import SubjectNotFound
from tests.engine.reference import assert_resolves_like_naive
from tests.engine.strategies import make_state, minute, states, times


@given(states(), times)
def test_snapshot_resolves_every_subject_like_the_naive_reference(
    state: State, now: datetime
) -> None:
    snapshot = build_snapshot(state, now)
    assert_resolves_like_naive(snapshot, state, now)
    assert snapshot.revision == state.revision
    assert snapshot.built_at == now


@pytest.mark.parametrize("subject_id", [-1, 3, 5, 10**12 + 1, -(2**63), 2**63 - 1, 2**64])
@pytest.mark.parametrize("far_id", [4, 10**12], ids=["dense", "sparse"])
def test_unknown_subjects_are_not_found_everywhere(subject_id: int, far_id: int) -> None:
    state = make_state(
        buckets=[1],
        subjects={i: Subject(weight=1, bucket=1) for i in (0, 1, 2, far_id)},
        features=[Feature("checkout", ("A",), default="A")],
    )
    snapshot = build_snapshot(state, minute(0))
    for lookup in (snapshot.variants, snapshot.flags_json, snapshot.subject):
        with pytest.raises(SubjectNotFound, match=f"^Subject {subject_id} does not exist"):
            lookup(subject_id)
    with pytest.raises(SubjectNotFound):
        snapshot.variant(subject_id, "checkout")


@given(states(), times, times)
def test_at_equals_building_at_the_new_time(state: State, first: datetime, then: datetime) -> None:
    moved = build_snapshot(state, first).at(then)
    assert_resolves_like_naive(moved, state, then)
    assert moved.next_boundary == first_liveness_change(state, then)


def first_liveness_change(state: State, now: datetime) -> datetime | None:
    """The next start or end + 1 µs after `now`, checked to change nothing before it."""

    def live(at: datetime) -> set[str]:
        return {test.name for test in state.abtests.values() if test.is_live(at)}

    instants = {t.start for t in state.abtests.values()} | {
        t.end + timedelta(microseconds=1) for t in state.abtests.values()
    }
    boundary = min((i for i in instants if i > now), default=None)
    if boundary is not None:
        assert live(boundary - timedelta(microseconds=1)) == live(now)
    return boundary


ONE_TEST = make_state(
    buckets=[1, 2],
    subjects={1: Subject(weight=1, bucket=1), 2: Subject(weight=1, bucket=2)},
    features=[Feature("checkout", ("A", "B"), default="A")],
    abtests=[
        AbTest(
            "pricing",
            minute(10),
            minute(20),
            (
                AbTestGroup("control", 0.5, {"checkout": "A"}, frozenset({1})),
                AbTestGroup("treatment", 0.5, {"checkout": "B"}, frozenset({2})),
            ),
        )
    ],
)


def test_next_boundary_walks_through_start_and_end() -> None:
    snapshot = build_snapshot(ONE_TEST, minute(0))
    assert snapshot.next_boundary == minute(10)
    live = snapshot.at(minute(10))
    assert live.variant(2, "checkout") == "B"
    assert live.next_boundary == minute(20) + timedelta(microseconds=1)
    ended = live.at(live.next_boundary)
    assert ended.variant(2, "checkout") == "A"
    assert ended.next_boundary is None


def test_at_returns_the_same_snapshot_when_nothing_changes() -> None:
    snapshot = build_snapshot(ONE_TEST, minute(11))
    assert snapshot.at(minute(19)) is snapshot


def test_at_keeps_the_views_when_only_the_boundary_moves() -> None:
    snapshot = build_snapshot(ONE_TEST, minute(21))
    assert snapshot.next_boundary is None
    earlier = snapshot.at(minute(5))
    assert earlier is not snapshot
    assert earlier.next_boundary == minute(10)
    assert earlier.variants(2) is snapshot.variants(2)


def test_subjects_with_the_same_view_share_one_precomputed_map() -> None:
    state = make_state(
        buckets=[1, 2],
        subjects={i: Subject(weight=1, bucket=1 + i % 2) for i in range(10)},
        features=[Feature("checkout", ("A", "B"), default="A")],
        rollouts=[Rollout("checkout", "B", 0.5, frozenset({2}))],
    )
    snapshot = build_snapshot(state, minute(0))
    assert snapshot.variants(0) is snapshot.variants(8)
    assert snapshot.flags_json(1) is snapshot.flags_json(9)
    assert snapshot.flags_json(1) == b'{"flags":{"checkout":"B"}}'


def test_flags_are_sorted_by_feature_name() -> None:
    state = make_state(
        buckets=[1],
        subjects={1: Subject(weight=1, bucket=1)},
        features=[Feature(name, ("A",), default="A") for name in ("zeta", "alpha", "mid")],
    )
    assert list(build_snapshot(state, minute(0)).variants(1)) == ["alpha", "mid", "zeta"]


def test_a_snapshot_cannot_be_constructed_or_mutated() -> None:
    with pytest.raises(TypeError, match="build_snapshot"):
        Snapshot()
    snapshot = build_snapshot(ONE_TEST, minute(0))
    with pytest.raises(AttributeError):
        snapshot.revision = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.variants(1)["checkout"] = "B"  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.config.features["new"] = Feature("new", ())  # type: ignore[index]


@given(st.integers(0, 3))
def test_an_empty_state_has_no_subjects(revision: int) -> None:
    snapshot = build_snapshot(make_state(revision=revision), minute(0))
    assert snapshot.subject_count == 0
    assert snapshot.next_boundary is None
    with pytest.raises(SubjectNotFound):
        snapshot.variants(0)
