"""Unknown subjects resolve to the defaults when asked; each flags body has a precomputed ETag
that changes exactly when the body does."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from hypothesis import given

from flaggery.engine import build_snapshot
from flaggery.engine.model import (
    Change,
    Feature,
    FeatureFact,
    Rollout,
    State,
    Subject,
    SubjectFact,
)
from flaggery.engine.views import entity_tag
from flaggery.errors import SubjectNotFound
from tests.engine.strategies import make_state, minute, states, times


def _state() -> State:
    return make_state(
        buckets=[1, 2],
        subjects={1: Subject(weight=1, bucket=1), 2: Subject(weight=1, bucket=2)},
        features=[
            Feature("b", ("on", "off"), default="off"),
            Feature("a", ("x",), default="x"),
            Feature("nodefault", ("y",)),
        ],
        rollouts=[Rollout("b", "on", 0.5, frozenset({1}))],
    )


@pytest.mark.parametrize("unknown", [3, -(2**63), 10**15])
def test_unknown_subjects_get_the_defaults_only_when_asked(unknown: int) -> None:
    snapshot = build_snapshot(_state(), minute(0))
    assert dict(snapshot.variants_or_defaults(unknown)) == {"a": "x", "b": "off"}
    assert list(snapshot.variants_or_defaults(unknown)) == ["a", "b"]  # like the flags body
    with pytest.raises(SubjectNotFound):
        snapshot.variants(unknown)
    with pytest.raises(SubjectNotFound):
        snapshot.flags_etag(unknown)
    # A known subject still gets its full resolution, rollout included.
    assert dict(snapshot.variants_or_defaults(1))["b"] == "on"


def test_defaults_follow_changes() -> None:
    snapshot = build_snapshot(_state(), minute(0))
    change = Change(2, "set_default", (FeatureFact("a", Feature("a", ("x", "z"), default="z")),))
    after = snapshot.apply([change], minute(1))
    assert dict(after.variants_or_defaults(3)) == {"a": "z", "b": "off"}


@given(states(), times)
def test_every_etag_is_the_tag_of_its_body(state: State, now: datetime) -> None:
    snapshot = build_snapshot(state, now)
    for subject_id in state.subjects.ids:
        body = snapshot.flags_json(subject_id)
        assert snapshot.flags_etag(subject_id) == entity_tag(body)


def test_etags_differ_when_bodies_differ_and_match_when_equal() -> None:
    snapshot = build_snapshot(_state(), minute(0))
    assert msgspec.json.decode(snapshot.flags_json(1)) != msgspec.json.decode(
        snapshot.flags_json(2)
    )
    assert snapshot.flags_etag(1) != snapshot.flags_etag(2)
    rebuilt = build_snapshot(_state(), minute(5))
    assert rebuilt.flags_etag(1) == snapshot.flags_etag(1)  # stable across builds, processes
    tag = snapshot.flags_etag(1)
    assert tag.startswith(b'"') and tag.endswith(b'"') and len(tag) == 18


@given(states(), times)
def test_view_slots_group_exactly_the_subjects_that_share_bucket_and_groups(
    state: State, now: datetime
) -> None:
    snapshot = build_snapshot(state, now)
    by_key: dict[tuple[int, tuple[str, ...]], set[int]] = {}
    by_slot: dict[int, set[int]] = {}
    for subject_id in state.subjects.ids:
        view = snapshot.subject(subject_id)
        by_key.setdefault((view.bucket, tuple(view.groups)), set()).add(subject_id)
        by_slot.setdefault(snapshot.view_slot(subject_id), set()).add(subject_id)
    assert sorted(map(sorted, by_key.values())) == sorted(map(sorted, by_slot.values()))
    missing = max(state.subjects.ids, default=0) + 1
    with pytest.raises(SubjectNotFound):
        snapshot.view_slot(missing)


def test_view_slot_of_a_removed_subject_inside_the_dense_window() -> None:
    state = make_state(buckets=[1], subjects={i: Subject(weight=1, bucket=1) for i in (1, 2, 3)})
    snapshot = build_snapshot(state, minute(0))
    removed = snapshot.apply([Change(2, "rm_subject", (SubjectFact(2, None),))], minute(1))
    with pytest.raises(SubjectNotFound):
        removed.view_slot(2)
    assert removed.view_slot(1) == removed.view_slot(3) == snapshot.view_slot(1)
