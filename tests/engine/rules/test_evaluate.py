"""Snapshot.evaluate with an evaluation context: rule groups and audiences for any key, and
explain_key naming the rule group and the constraint set."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from flaggery.engine import build_snapshot
from flaggery.engine.model import Feature, Group, Rollout, State, Subject
from flaggery.engine.rules import parse_rule
from tests.engine.naive import naive_key_variants, naive_variants
from tests.engine.rules.samples import SAMPLE_CONTEXTS
from tests.engine.strategies import T0, make_state, states, times

KEYS = st.sampled_from(["0", "7", "12", "40", "visitor-1", "ann@example.com", "٤٢"])
GERMANY = parse_rule([[{"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}]])
STAFF = parse_rule(
    [
        [{"contextName": "plan", "operator": "IN", "values": ["internal"]}],
        [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}],
    ]
)


@settings(max_examples=300, deadline=None)
@given(states(), KEYS, SAMPLE_CONTEXTS, times)
def test_any_key_with_a_context_resolves_like_the_naive_reference(
    state: State, key: str, context: dict[str, object], now: datetime
) -> None:
    snapshot = build_snapshot(state, T0)
    # The snapshot was built at T0: its views (rollouts, tests) are those of T0; `now` only
    # stands for currentTime (no sample rule reads it).
    evaluation = snapshot.evaluate(key, context, now=now)
    assert dict(evaluation.flags) == naive_key_variants(state, key, T0, context)
    for subject_id in state.subjects.ids:
        if subject_id >= 0:  # "-3" is a key of its own, not the subject
            flags = snapshot.evaluate(str(subject_id), context, now=now).flags
            assert dict(flags) == naive_variants(state, subject_id, T0, context)


def _state() -> State:
    return make_state(
        buckets=[1, 2],
        subjects={7: Subject(1, 1, ("beta",)), 8: Subject(1, 2)},
        features=[
            Feature("checkout", ("A", "B", "C"), "A"),
            Feature("search", ("old", "new"), "old"),
        ],
        rollouts=[Rollout("search", "new", 1.0, frozenset({1, 2}), audience="germany")],
        groups=[
            Group("germany", {"checkout": "B"}, GERMANY),
            Group("beta", {"checkout": "C"}),
            Group("staff", {"checkout": "A"}, STAFF),
        ],
    )


def test_explicit_groups_win_over_rule_groups_and_rule_groups_go_in_name_order() -> None:
    snapshot = build_snapshot(_state(), T0)
    german = {"country": "DE"}
    assert snapshot.evaluate("7", german).flags == {"checkout": "C", "search": "new"}
    assert snapshot.evaluate("7", german).view.groups == ("germany", "beta")
    assert snapshot.evaluate("8", german).flags == {"checkout": "B", "search": "new"}
    staff_in_germany = snapshot.evaluate("8", {**german, "email": "ann@example.com"})
    assert staff_in_germany.view.groups == ("germany", "staff")
    assert staff_in_germany.flags["checkout"] == "A"  # "staff" after "germany": it wins


def test_an_audience_serves_only_its_group_and_no_context_means_no_rule() -> None:
    snapshot = build_snapshot(_state(), T0)
    assert snapshot.evaluate("visitor-1", {"country": "AT"}).flags["search"] == "new"
    assert snapshot.evaluate("visitor-1", {"country": "FR"}).flags["search"] == "old"
    assert snapshot.evaluate("visitor-1").flags == {"checkout": "A", "search": "old"}
    assert snapshot.evaluate("8", {}).flags == snapshot.variants(8)


def test_explain_names_the_rule_group_and_the_constraint_set() -> None:
    snapshot = build_snapshot(_state(), T0)
    explained = snapshot.explain_key("8", {"country": "DE", "email": "bob@example.com"})
    assert explained.rule_groups == {"germany": 0, "staff": 1}
    checkout = explained.features["checkout"]
    assert (checkout.source, checkout.group, checkout.rule_set) == ("override", "staff", 1)
    search = explained.features["search"]
    assert (search.source, search.audience) == ("rollout", "germany")
    joined = snapshot.explain_key("7", {"country": "DE"})
    assert joined.rule_groups == {"germany": 0}
    assert (joined.features["checkout"].group, joined.features["checkout"].rule_set) == (
        "beta",
        None,
    )


VISITOR = parse_rule([[{"contextName": "userId", "operator": "IN", "values": ["visitor-1"]}]])
BY_KEY = parse_rule(
    [[{"contextName": "targetingKey", "operator": "STR_STARTS_WITH", "values": ["visitor-"]}]]
)


def test_rules_read_the_request_s_key_as_its_targeting_key() -> None:
    """The Python API, the OpenFeature provider and the dashboard pass the key apart from the
    context; OFREP's context carries it. Rules on targetingKey and userId see it either way
    (the key wins over a different targetingKey, as on the REST routes)."""
    state = make_state(
        buckets=[1],
        features=[Feature("checkout", ("A", "B", "C"), "A")],
        groups=[
            Group("vip", {"checkout": "B"}, VISITOR),
            Group("visitors", {"checkout": "C"}, BY_KEY),
        ],
    )
    snapshot = build_snapshot(state, T0)
    apart = snapshot.evaluate("visitor-1", {"country": "DE"})
    carried = snapshot.evaluate("visitor-1", {"country": "DE", "targetingKey": "visitor-1"})
    assert apart.groups == carried.groups == ("vip", "visitors")
    assert dict(apart.flags) == {"checkout": "C"}  # visitors sorts last: its override wins
    other = snapshot.evaluate("visitor-1", {"country": "DE", "targetingKey": "someone"})
    assert other.groups == apart.groups
    assert snapshot.place("visitor-1", {"country": "DE"}).groups == apart.groups
    explained = snapshot.explain_key("visitor-1", {"country": "DE"})
    assert set(explained.rule_groups) == {"vip", "visitors"}
    assert snapshot.evaluate("visitor-2", {"country": "DE"}).groups == ("visitors",)
    # No context at all stays in its explicit groups only (rules cost it nothing).
    assert snapshot.evaluate("visitor-1").groups == snapshot.evaluate("visitor-1", {}).groups == ()
