"""The JSON spec cases, run against the engine (and checked to be reachable through the API)."""

from __future__ import annotations

import msgspec
import pytest

from flaggery.engine import (
    build_snapshot,
    place_subjects,
)
from flaggery.errors import SubjectNotFound
from tests.engine.naive import naive_variants
from tests.engine.spec_cases import CaseCheck, SpecCase, load_cases, state_of

CASES = load_cases()
CHECKS = [
    pytest.param(case, check, id=f"{name}@{check.at.isoformat()}")
    for name, case in CASES.items()
    for check in case.checks
]
by_case = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def test_there_are_cases() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize(("case", "check"), CHECKS)
def test_snapshot_resolves_as_the_case_expects(case: SpecCase, check: CaseCheck) -> None:
    state = state_of(case)
    snapshot = build_snapshot(state, check.at)
    assert sorted(check.flags) == sorted(state.subjects.ids), "a check lists every subject"
    for subject_id, expected in check.flags.items():
        assert dict(snapshot.variants(subject_id)) == expected
        assert msgspec.json.decode(snapshot.flags_json(subject_id)) == {"flags": expected}
        assert naive_variants(state, subject_id, check.at) == expected
    for subject_id in check.not_found:
        with pytest.raises(SubjectNotFound):
            snapshot.variants(subject_id)


@by_case
def test_moving_a_snapshot_through_the_checks_in_time(case: SpecCase) -> None:
    checks = sorted(case.checks, key=lambda check: check.at)
    snapshot = build_snapshot(state_of(case), checks[0].at)
    for check in checks:
        snapshot = snapshot.at(check.at)
        assert {i: dict(snapshot.variants(i)) for i in check.flags} == check.flags


@by_case
def test_case_state_is_within_the_admin_allocation_bounds(case: SpecCase) -> None:
    """Subjects are placed as the admin API places them; rollouts and tests hold what an
    admin-API allocation could (see cases/README.md)."""
    spec = case.state
    weights = dict.fromkeys(spec.buckets, 0)
    placed, _after = place_subjects(weights, [subject.weight for subject in spec.subjects])
    assert placed.tolist() == [subject.bucket for subject in spec.subjects]
    for subject in spec.subjects:
        weights[subject.bucket] += subject.weight
    # Which buckets depends on the feature's or test's name (bucket_order); how much weight
    # they hold is what a case can rely on: within the allocation bounds.
    total, largest = sum(weights.values()), max(weights.values(), default=0)
    for rollout in spec.rollouts:
        held = sum(weights[b] for b in rollout.buckets)
        assert abs(held - rollout.proportion * total) <= largest / 2
    for test in spec.abtests:
        assert sorted(b for group in test.groups for b in group.buckets) == sorted(weights)
        for group in test.groups:
            held = sum(weights[b] for b in group.buckets)
            assert abs(held - group.proportion * total) <= largest * (len(test.groups) - 1)


@by_case
def test_case_state_obeys_the_admin_rules(case: SpecCase) -> None:
    spec = case.state
    variants = {feature.name: set(feature.variants) for feature in spec.features}
    assignments = [(r.feature, r.variant) for r in spec.rollouts]
    assignments += [pair for group in spec.groups for pair in group.overrides.items()]
    for test in spec.abtests:
        assert test.start < test.end
        assert sum(group.proportion for group in test.groups) == pytest.approx(1)
        assert len({frozenset(group.variants) for group in test.groups}) == 1
        assignments += [pair for group in test.groups for pair in group.variants.items()]
    assert all(variant in variants[feature] for feature, variant in assignments)
    for first in spec.abtests:
        for second in spec.abtests:
            overlap = first.start <= second.end and second.start <= first.end
            shared = set(first.groups[0].variants) & set(second.groups[0].variants)
            assert first is second or not (overlap and shared)
