"""Snapshot.reach and Snapshot.moves: who gets each variant after precedence, and who a change
would move, counted from the snapshot's views and equal to explaining every unit one by one."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import build_snapshot
from flaggery.engine.explanation import FeatureExplanation
from flaggery.engine.model import AbTestFact, Fact, GroupFact, RolloutFact, State
from flaggery.engine.reach import Move, Via
from flaggery.engine.views import ViewKey, explain_key
from tests.engine.strategies import FEATURES, minute, states, times
from tests.engine.test_resolution_order import LAYERED


def _via(why: FeatureExplanation | None) -> Via:
    if why is None:
        return Via(None, None)
    return Via(why.variant, why.source, why.test, why.test_group, why.group)


def test_a_live_test_takes_the_rollouts_subjects() -> None:
    """During "pricing", the rollout of B (60% of the weight) serves nobody: the test's groups
    take its buckets and the overrides take the group members."""
    reach = build_snapshot(LAYERED, minute(15)).reach("checkout")
    assert reach.subjects == 6
    assert reach.buckets == 3
    served = {r.via: (r.subjects, r.buckets) for r in reach.reaches}
    assert served == {
        Via("B", "abtest", test="pricing", test_group="control"): (2, 2),
        Via("C", "abtest", test="pricing", test_group="treatment"): (1, 1),
        Via("D", "override", group="beta"): (2, 0),
        Via("E", "override", group="staff"): (1, 0),
    }
    assert Via("B", "rollout") not in served


def test_reach_counts_match_explaining_every_subject_of_the_layered_state() -> None:
    snapshot = build_snapshot(LAYERED, minute(15))
    for feature in ("checkout", "search"):
        expected = Counter(_via(snapshot.explain(i).features.get(feature)) for i in range(1, 7))
        got = {r.via: r.subjects for r in snapshot.reach(feature).reaches if r.subjects}
        assert got == dict(expected)


@given(states(), times)
def test_reach_equals_explaining_each_subject_and_each_bucket(state: State, now: datetime) -> None:
    snapshot = build_snapshot(state, now)
    for feature in FEATURES:
        reach = snapshot.reach(feature)
        subjects = Counter(
            _via(snapshot.explain(i).features.get(feature)) for i in state.subjects.ids
        )
        buckets = Counter(
            _via(explain_key(snapshot.config, ViewKey(b), now).get(feature)) for b in state.buckets
        )
        assert {r.via: r.subjects for r in reach.reaches if r.subjects} == dict(subjects)
        assert {r.via: r.buckets for r in reach.reaches if r.buckets} == dict(buckets)
        assert reach.subjects == len(state.subjects.ids)
        assert sum(r.subjects for r in reach.reaches) == reach.subjects


@given(states(), times, st.data())
def test_moves_equal_the_difference_the_change_makes(
    state: State, now: datetime, data: st.DataObject
) -> None:
    """Removing a rollout, a test or a group, as the store would: the moves are exactly the
    subjects whose explanation differs between the snapshot before and after."""
    choices: list[Fact] = [RolloutFact(f, None) for f in state.rollouts]
    choices += [AbTestFact(n, None) for n in state.abtests]
    choices += [GroupFact(n, None) for n in state.groups]
    if not choices:
        return
    fact = data.draw(st.sampled_from(choices))
    before = build_snapshot(state, now)
    after_config = before.config.with_facts([fact])
    expected: Counter[tuple[str, Via, Via]] = Counter()
    for subject in state.subjects.ids:
        key = ViewKey(before.subject(subject).bucket, tuple(before.subject(subject).groups))
        old, new = explain_key(before.config, key, now), explain_key(after_config, key, now)
        for feature in old.keys() | new.keys():
            pair = (_via(old.get(feature)), _via(new.get(feature)))
            if pair[0] != pair[1]:
                expected[feature, *pair] += 1
    got = {(m.feature, m.before, m.after): m.subjects for m in before.moves([fact]) if m.subjects}
    assert got == dict(expected)


def test_stopping_a_test_names_who_goes_back_to_the_rollout() -> None:
    snapshot = build_snapshot(LAYERED, minute(15))
    pricing = snapshot.config.abtests["pricing"]
    stopped = msgspec.structs.replace(pricing, end=minute(14))
    moved = snapshot.moves([AbTestFact("pricing", stopped)])
    control = Via("B", "abtest", test="pricing", test_group="control")
    treatment = Via("C", "abtest", test="pricing", test_group="treatment")
    assert moved == [
        Move("checkout", control, Via("A", "default"), 1, 1),
        Move("checkout", control, Via("B", "rollout"), 1, 1),
        Move("checkout", treatment, Via("B", "rollout"), 1, 1),
    ]


def test_leaving_a_group_names_what_the_subject_gets_instead() -> None:
    snapshot = build_snapshot(LAYERED, minute(9))
    assert snapshot.membership_moves(6, "beta") == [
        Move(
            "checkout",
            Via("D", "override", group="beta"),
            Via("E", "override", group="staff"),
            1,
            0,
        )
    ]
    assert snapshot.membership_moves(6, "vip") == []
