from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import ChangeGap
from flaggery.engine.catch_up import facts_after
from flaggery.engine.model import (
    AbTest,
    BucketFact,
    Change,
    Feature,
    FeatureFact,
    GrownTest,
    GrowthFact,
    Rollout,
    RolloutFact,
    State,
    Subject,
    SubjectFact,
    TestGroup,
    decode_facts,
    encode_facts,
)
from tests.engine.state_patch import apply_changes, apply_facts
from tests.engine.strategies import T0, changes, make_state, states


def test_facts_after_skips_replays_and_concatenates_in_order() -> None:
    a, b, c = BucketFact(1), BucketFact(2), BucketFact(3)
    log = [Change(3, "old", (a,)), Change(4, "x", (b,)), Change(5, "y", (c, a))]
    assert facts_after(3, log) == (5, [b, c, a])
    assert facts_after(5, log) == (5, [])


def test_facts_after_refuses_gaps_and_disorder() -> None:
    with pytest.raises(ChangeGap):
        facts_after(3, [Change(5, "x", ())])
    with pytest.raises(ChangeGap):
        facts_after(3, [Change(5, "x", ()), Change(4, "y", ())])


def test_apply_facts_replaces_entities_and_keeps_columns_sorted() -> None:
    state = make_state(
        buckets=[1],
        subjects={5: Subject(weight=1, bucket=1, groups=("beta",)), 9: Subject(weight=2, bucket=1)},
        features=[Feature("checkout", ("A",))],
        rollouts=[Rollout("checkout", "A", 1.0, frozenset({1}))],
    )
    patched = apply_facts(
        state,
        [
            BucketFact(2),
            SubjectFact(7, Subject(weight=3, bucket=2, groups=("staff",))),
            SubjectFact(5, Subject(weight=4, bucket=1)),
            SubjectFact(9, None),
            FeatureFact("search", Feature("search", ("old", "new"), default="old")),
            RolloutFact("checkout", None),
        ],
    )
    assert patched.buckets == (1, 2)
    assert list(patched.subjects.ids) == [5, 7]
    assert list(patched.subjects.weights) == [4, 3]
    assert list(patched.subjects.buckets) == [1, 2]
    assert dict(patched.memberships) == {7: ("staff",)}
    assert list(patched.features) == ["checkout", "search"]
    assert dict(patched.rollouts) == {}
    assert list(state.subjects.ids) == [5, 9]  # the original is untouched


@given(st.data(), states())
def test_replaying_facts_is_harmless(data: st.DataObject, state: State) -> None:
    facts = [fact for change in data.draw(changes(state)) for fact in change.facts]
    once = apply_facts(state, facts)
    twice = apply_facts(once, facts)
    assert twice == once


@given(st.data(), states())
def test_facts_survive_the_change_log_encoding(data: st.DataObject, state: State) -> None:
    log = data.draw(changes(state))
    decoded = [Change(c.revision, c.operation, decode_facts(encode_facts(c.facts))) for c in log]
    assert apply_changes(state, decoded) == apply_changes(state, log)


def test_a_growth_fact_adds_the_new_buckets_each_rollout_and_group_took() -> None:
    groups = (
        TestGroup("a", 0.5, {"f": "on"}, frozenset({1})),
        TestGroup("b", 0.5, {}, frozenset()),
    )
    state = make_state(
        buckets=[1],
        rollouts=[Rollout("f", "on", 0.5, frozenset({1}))],
        abtests=[AbTest("t", T0, T0, groups)],
    )
    growth = GrowthFact(
        2, 4, {"f": [2, 4], "gone": [3]}, {"t": GrownTest(("f",), {"a": [3], "b": [2, 4]})}
    )
    grown = apply_facts(state, [growth])
    assert grown.buckets == (1, 2, 3, 4)
    assert grown.rollouts["f"].buckets == {1, 2, 4} and "gone" not in grown.rollouts
    assert [g.buckets for g in grown.abtests["t"].groups] == [{1, 3}, {2, 4}]
    assert apply_facts(grown, [growth]) == grown  # a replay changes nothing
    assert decode_facts(encode_facts([growth])) == (growth,)
