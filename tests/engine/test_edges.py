"""No value the store accepts can make a snapshot fail to build, apply, move in time or save.

States are drawn at the edges of every domain the store validates: instants from year 1 to the
last microsecond of 9999, weights 1 and 2^31-1, ids at both ends of int64, bucket ids up to the
largest INTEGER, names of 1 and 200 characters from all of Unicode but '/' and controls, and
the largest counts the store allows per A/B test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flaggery.engine import build_snapshot, decode_state, encode_state
from flaggery.engine.model import (
    AbTest,
    AbTestFact,
    Change,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    Rollout,
    Subject,
    SubjectFact,
    TestGroup,
)
from tests.engine.reference import assert_resolves_like_naive
from tests.engine.state_patch import apply_changes
from tests.engine.strategies import make_state

FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
TICK = timedelta(microseconds=1)
EDGE_TIMES = [FIRST, FIRST + TICK, LAST - TICK, LAST, datetime(2030, 1, 1, tzinfo=UTC)]
MAX_WEIGHT = 2**31 - 1
MAX_BUCKET = 2**31 - 1
EDGE_IDS = [-(2**63), -(2**63) + 1, -1, 0, 1, 2**63 - 2, 2**63 - 1]

times = st.sampled_from(EDGE_TIMES) | st.datetimes(timezones=st.just(UTC))
names = (
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
        min_size=1,
        max_size=200,
    )
    .map(str.strip)
    .filter(bool)
)
long_names = st.sampled_from(["x" * 200, "\U0010fffd" * 200, "é" * 200])
any_names = names | long_names
bucket_ids = st.sampled_from([1, 2, 10_000, MAX_BUCKET]) | st.integers(1, MAX_BUCKET)
weights = st.sampled_from([1, MAX_WEIGHT]) | st.integers(1, MAX_WEIGHT)
subject_ids = st.sampled_from(EDGE_IDS) | st.integers(-(2**63), 2**63 - 1)
proportions = st.sampled_from([0.0, 1.0, 5e-324, 1 - 2**-53]) | st.floats(0, 1)


@st.composite
def abtests(draw: st.DrawFn, name: str, features: list[str], buckets: list[int]) -> AbTest:
    start, end = sorted(draw(st.lists(times, min_size=2, max_size=2, unique=True)))
    count = draw(st.sampled_from([2, 100]))
    variants = {feature: "v" for feature in features}
    groups = tuple(
        TestGroup(f"g{i}", 1 / count, variants, frozenset(buckets[i::count])) for i in range(count)
    )
    return AbTest(name, start, end, groups)


@st.composite
def edge_states(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    buckets = sorted(draw(st.sets(bucket_ids, min_size=1, max_size=8)))
    features = draw(st.lists(any_names, min_size=1, max_size=4, unique=True))
    group_names = draw(st.lists(any_names, max_size=4, unique=True))
    ids = draw(st.sets(subject_ids, max_size=10))
    subjects = {
        i: Subject(
            draw(weights),
            draw(st.sampled_from(buckets)),
            tuple(draw(st.permutations(group_names))[: draw(st.integers(0, len(group_names)))]),
        )
        for i in ids
    }
    test_features = [f"f{i}" for i in range(draw(st.sampled_from([1, 100])))]
    return make_state(
        buckets=buckets,
        subjects=subjects,
        features=[Feature(f, ("v", "__DISABLE__"), "v") for f in [*features, *test_features]],
        rollouts=[
            Rollout(f, "v", draw(proportions), frozenset(draw(st.sets(st.sampled_from(buckets)))))
            for f in features
        ],
        abtests=[
            draw(abtests(name, test_features, buckets))
            for name in draw(st.lists(any_names, max_size=2, unique=True))
        ],
        groups=[Group(g, {f: "__DISABLE__" for f in features}) for g in group_names],
        revision=draw(st.sampled_from([0, 1, 2**63 - 2])),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_states(), times, times)
def test_edge_states_build_move_in_time_and_save(state, now, later) -> None:  # type: ignore[no-untyped-def]
    snapshot = build_snapshot(state, now)
    assert_resolves_like_naive(snapshot, state, now)
    moved = snapshot.at(later)
    assert_resolves_like_naive(moved, state, later)
    if snapshot.next_boundary is not None:
        assert snapshot.next_boundary > now
        snapshot.at(snapshot.next_boundary)
    assert decode_state(encode_state(snapshot.to_state())) == snapshot.to_state()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_states(), times, any_names, subject_ids, weights)
def test_edge_facts_apply(state, now, name, subject_id, weight) -> None:  # type: ignore[no-untyped-def]
    snapshot = build_snapshot(state, now)
    bucket = state.buckets[-1]
    facts = (
        FeatureFact(name, Feature(name, ("v",), "v")),
        GroupFact(name, Group(name, {name: "v"})),
        SubjectFact(subject_id, Subject(weight, bucket, (name,))),
        AbTestFact(name, AbTest(name, now, LAST, (TestGroup("a", 1.0, {name: "v"}, frozenset()),))),
    )
    change = Change(state.revision + 1, "edge", facts)
    applied = snapshot.apply([change], now)
    assert_resolves_like_naive(applied, apply_changes(state, [change]), now)
    assert applied.variants(subject_id)[name] == "v"


def test_a_test_ending_at_the_last_instant_builds_and_never_ends() -> None:
    """Issue 8 item 9: end = datetime.max in UTC made every build raise OverflowError."""
    test = AbTest("t", datetime(2030, 1, 1, tzinfo=UTC), LAST, (
        TestGroup("a", 0.5, {"f": "A"}, frozenset({1})),
        TestGroup("b", 0.5, {"f": "B"}, frozenset({2})),
    ))  # fmt: skip
    state = make_state(
        buckets=[1, 2],
        subjects={7: Subject(1, 2)},
        features=[Feature("f", ("A", "B"), "A")],
        abtests=[test],
    )
    before = build_snapshot(state, datetime(2029, 1, 1, tzinfo=UTC))
    assert before.next_boundary == test.start
    assert before.variants(7) == {"f": "A"}
    live = before.at(test.start)
    assert live.variants(7) == {"f": "B"}
    assert live.next_boundary is None
    assert live.at(LAST).variants(7) == {"f": "B"}
