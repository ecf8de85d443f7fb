"""docs/semantics.md's resolution order, by example, for the snapshot and the naive reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import pytest

from flaggery.engine import build_snapshot
from flaggery.engine.model import AbTest, Feature, Group, Rollout, State, Subject
from flaggery.engine.model import TestGroup as AbTestGroup  # not collected as a test class
from flaggery.errors import SubjectNotFound
from tests.engine.naive import naive_variants
from tests.engine.strategies import make_state, minute

Resolve = Callable[[State, int, datetime], Mapping[str, str]]


def snapshot_variants(state: State, subject_id: int, now: datetime) -> Mapping[str, str]:
    return build_snapshot(state, now).variants(subject_id)


resolvers = pytest.mark.parametrize("resolve", [snapshot_variants, naive_variants])

LAYERED = make_state(
    buckets=[1, 2, 3],
    subjects={
        1: Subject(weight=1, bucket=1),
        2: Subject(weight=1, bucket=2),
        3: Subject(weight=1, bucket=3),
        4: Subject(weight=1, bucket=3, groups=("beta",)),
        5: Subject(weight=1, bucket=3, groups=("beta", "staff")),
        6: Subject(weight=1, bucket=3, groups=("staff", "beta")),
    },
    features=[
        Feature("checkout", ("A", "B", "C", "D", "E"), default="A"),
        Feature("search", ("old", "new")),
    ],
    rollouts=[Rollout("checkout", "B", 0.6, frozenset({2, 3}))],
    abtests=[
        AbTest(
            "pricing",
            minute(10),
            minute(20),
            (
                AbTestGroup("control", 0.5, {"checkout": "B"}, frozenset({1, 2})),
                AbTestGroup("treatment", 0.5, {"checkout": "C"}, frozenset({3})),
            ),
        )
    ],
    groups=[Group("beta", {"checkout": "D"}), Group("staff", {"checkout": "E", "search": "new"})],
)


@resolvers
@pytest.mark.parametrize(
    ("subject_id", "expected"),
    [
        (1, {"checkout": "A"}),  # default only; a feature without default is absent
        (2, {"checkout": "B"}),  # the rollout beats the default
        (3, {"checkout": "B"}),
        (4, {"checkout": "D"}),  # a group override beats the rollout
        (5, {"checkout": "E", "search": "new"}),  # the group joined later wins
        (6, {"checkout": "D", "search": "new"}),
    ],
)
def test_before_the_test_starts(
    resolve: Resolve, subject_id: int, expected: dict[str, str]
) -> None:
    assert dict(resolve(LAYERED, subject_id, minute(9))) == expected


@resolvers
@pytest.mark.parametrize(
    ("subject_id", "expected"),
    [
        (1, {"checkout": "B"}),  # a live test beats the default ...
        (3, {"checkout": "C"}),  # ... and the rollout
        (4, {"checkout": "D"}),  # ... but not a group override
        (6, {"checkout": "D", "search": "new"}),
    ],
)
@pytest.mark.parametrize("now", [minute(10), minute(15), minute(20)])
def test_while_the_test_is_live(
    resolve: Resolve, subject_id: int, expected: dict[str, str], now: datetime
) -> None:
    assert dict(resolve(LAYERED, subject_id, now)) == expected


@resolvers
@pytest.mark.parametrize(
    "now", [minute(10) - timedelta(microseconds=1), minute(20) + timedelta(microseconds=1)]
)
def test_liveness_is_inclusive_at_both_ends(resolve: Resolve, now: datetime) -> None:
    assert dict(resolve(LAYERED, 3, now)) == {"checkout": "B"}


@resolvers
def test_a_membership_of_a_deleted_group_overrides_nothing(resolve: Resolve) -> None:
    state = make_state(
        buckets=[1],
        subjects={1: Subject(weight=1, bucket=1, groups=("gone",))},
        features=[Feature("checkout", ("A",), default="A")],
    )
    assert dict(resolve(state, 1, minute(0))) == {"checkout": "A"}


@resolvers
def test_an_unknown_subject_is_not_found(resolve: Resolve) -> None:
    with pytest.raises(SubjectNotFound, match=r"^Subject 99 does not exist\.$"):
        resolve(LAYERED, 99, minute(0))
