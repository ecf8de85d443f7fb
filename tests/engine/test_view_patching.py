"""A change re-resolves only the features it touches, in the views it can move, and the views
are byte for byte what a build of the resulting state resolves."""

from __future__ import annotations

from datetime import datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import Snapshot, build_snapshot
from flaggery.engine.config import Config
from flaggery.engine.model import (
    AbTest,
    AbTestFact,
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
    TestGroup,
)
from flaggery.engine.views import ViewKey, ViewResolver, changed_features, live_tests
from tests.engine.state_patch import apply_changes
from tests.engine.strategies import (
    FEATURES,
    GROUP_NAMES,
    VARIANTS,
    changes,
    make_state,
    minute,
    states,
    times,
)


def assert_views_as_built(snapshot: Snapshot, state: State, now: datetime) -> None:
    """Every view `snapshot` holds (those no subject is on any more included: a request in
    rule groups may still be served one) has the body, ETag and flags a fresh build of
    `state` at `now` resolves for its key."""
    full = build_snapshot(state, now)
    views = snapshot._views
    assert len(views.flags) == len(views.json) == len(views.etags) == len(views.keys)
    for key, flags, body, etag in zip(
        views.keys, views.flags, views.json, views.etags, strict=True
    ):
        fresh = full.view(key.bucket, key.groups)
        assert (body, etag, dict(flags)) == (fresh.json, fresh.etag, dict(fresh.flags)), key
        assert list(flags) == sorted(flags)


@given(st.data(), states(), times)
def test_after_every_change_every_view_is_what_a_build_resolves(
    data: st.DataObject, state: State, built: datetime
) -> None:
    """Random change sequences applied one at a time, each at a random time (tests start and
    stop being live between them): after each, every view equals a fresh build's."""
    snapshot = build_snapshot(state, built)
    for change in data.draw(changes(state)):
        now = data.draw(times)
        snapshot = snapshot.apply([change], now)
        state = apply_changes(state, [change])
        assert_views_as_built(snapshot, state, now)
        moved = snapshot.at(data.draw(times))
        assert_views_as_built(moved, state, moved.built_at)


@st.composite
def edits(draw: st.DrawFn, state: State) -> list[Change]:
    """Changes that edit what `state` has in place, as most writes do: rollouts moved to
    other buckets with their variant and audience kept, test groups given other buckets,
    overrides and defaults changed, kill switches toggled, tests removed and re-added (which
    puts them after the others)."""
    buckets = draw(st.frozensets(st.sampled_from(state.buckets)))
    facts: list[Fact] = []
    for rollout in state.rollouts.values():
        moved = frozenset(state.buckets) & draw(st.frozensets(st.sampled_from(state.buckets)))
        facts.append(RolloutFact(rollout.feature, msgspec.structs.replace(rollout, buckets=moved)))
    for test in state.abtests.values():
        groups = tuple(msgspec.structs.replace(group, buckets=buckets) for group in test.groups)
        edited = msgspec.structs.replace(test, groups=groups)
        if draw(st.booleans()):
            facts.extend((AbTestFact(test.name, None), AbTestFact(test.name, test)))
        facts.append(AbTestFact(test.name, draw(st.sampled_from([test, edited]))))
    for group in state.groups.values():
        overrides = dict(group.overrides)
        overrides[draw(st.sampled_from(FEATURES))] = draw(st.sampled_from(VARIANTS))
        facts.append(GroupFact(group.name, msgspec.structs.replace(group, overrides=overrides)))
    for feature in state.features.values():
        killed = draw(st.booleans())
        default = draw(st.sampled_from([None, *feature.variants]))
        edited_feature = msgspec.structs.replace(feature, killed=killed, default=default)
        facts.append(FeatureFact(feature.name, edited_feature))
    facts = draw(st.permutations(facts))
    cuts = sorted(draw(st.sets(st.integers(0, len(facts)), max_size=3)))
    parts = [facts[a:b] for a, b in zip([0, *cuts], [*cuts, len(facts)], strict=True)]
    return [
        Change(revision=state.revision + 1 + n, operation="edit", facts=tuple(part))
        for n, part in enumerate(parts)
    ]


@given(st.data(), states(), times)
def test_after_every_edit_every_view_is_what_a_build_resolves(
    data: st.DataObject, state: State, now: datetime
) -> None:
    snapshot = build_snapshot(state, now)
    for change in data.draw(edits(state)):
        snapshot = snapshot.apply([change], now)
        state = apply_changes(state, [change])
        assert_views_as_built(snapshot, state, now)


def test_a_test_removed_and_added_again_goes_last_and_wins_its_features() -> None:
    """Of two live tests setting one feature in one bucket, the later wins: re-adding the
    earlier one in the same change makes it the later one, with nothing else changed."""
    first = AbTest(
        "t1", minute(0), minute(10), (TestGroup("g", 1.0, {"search": "A"}, frozenset({1})),)
    )
    second = AbTest(
        "t2", minute(0), minute(10), (TestGroup("g", 1.0, {"search": "C"}, frozenset({1})),)
    )
    state = make_state(
        revision=1,
        buckets=[1],
        subjects={1: Subject(weight=1, bucket=1)},
        features=[Feature("search", ("A", "B", "C"), default="B")],
        abtests=[first, second],
    )
    snapshot = build_snapshot(state, minute(1))
    assert snapshot.variant(1, "search") == "C"
    log = [Change(2, "edit", (AbTestFact("t1", None), AbTestFact("t1", first)))]
    snapshot = snapshot.apply(log, minute(1))
    assert snapshot.variant(1, "search") == "A"
    assert_views_as_built(snapshot, apply_changes(state, log), minute(1))


@given(states(), times, st.sets(st.sampled_from(FEATURES)), st.data())
def test_a_resolver_restricted_to_features_resolves_them_as_the_whole_one(
    state: State, now: datetime, features: set[str], data: st.DataObject
) -> None:
    config = Config.of(state)
    whole = ViewResolver(config, now)
    restricted = ViewResolver(config, now, features=features)
    groups = tuple(data.draw(st.lists(st.sampled_from(GROUP_NAMES), unique=True)))
    for bucket in state.buckets:
        key = ViewKey(bucket, groups)
        expected = {f: why for f, why in whole.explain(key).items() if f in features}
        assert restricted.explain(key) == expected
        # Groups out of play change none of these features.
        in_play = ViewKey(
            bucket, tuple(name for name in groups if name in restricted.groups_in_play)
        )
        assert restricted.explain(in_play) == expected


BUCKETS = range(20)
STATE = make_state(
    revision=1,
    buckets=BUCKETS,
    subjects={
        **{i: Subject(weight=1, bucket=i) for i in BUCKETS},
        100: Subject(weight=1, bucket=3, groups=("beta",)),
        101: Subject(weight=1, bucket=8, groups=("gamma",)),
    },
    features=[
        Feature("checkout", ("A", "B"), default="A"),
        Feature("search", ("A", "B"), default="B"),
    ],
    rollouts=[Rollout("checkout", "B", 0.25, frozenset(range(5)))],
    groups=[Group("beta", {"search": "A"}), Group("gamma", {})],
)


def _applied(*facts: Fact) -> tuple[Snapshot, Snapshot]:
    """The snapshot of STATE and the one after `facts`, both checked against a build."""
    before = build_snapshot(STATE, minute(0))
    log = [Change(revision=2, operation="test", facts=facts)]
    after = before.apply(log, minute(0))
    assert_views_as_built(after, apply_changes(STATE, log), minute(0))
    return before, after


def _kept(before: Snapshot, after: Snapshot) -> set[ViewKey]:
    """The keys whose body is the very object it was (not resolved again)."""
    old, new = before._views, after._views
    return {key for key, a, b in zip(old.keys, old.json, new.json, strict=False) if a is b}


def test_a_rollout_moved_re_resolves_only_the_buckets_it_entered() -> None:
    before, after = _applied(
        RolloutFact("checkout", Rollout("checkout", "B", 0.5, frozenset(range(10))))
    )
    moved = set(before._views.keys) - _kept(before, after)
    assert moved == {*(ViewKey(b) for b in range(5, 10)), ViewKey(8, ("gamma",))}
    assert after.variant(7, "checkout") == "B" and after.variant(12, "checkout") == "A"


def test_an_override_re_resolves_only_the_views_holding_its_group() -> None:
    before, after = _applied(GroupFact("gamma", Group("gamma", {"checkout": "B"})))
    assert set(before._views.keys) - _kept(before, after) == {ViewKey(8, ("gamma",))}
    assert after.variant(101, "checkout") == "B"


def test_a_default_reaches_every_view_and_moves_those_it_changes() -> None:
    default = Feature("search", ("A", "B"), default="A")
    before, after = _applied(FeatureFact("search", default))
    # Subject 100's view holds beta, whose override already gave it A: it keeps its bytes.
    assert _kept(before, after) == {ViewKey(3, ("beta",))}
    assert after.variant(1, "search") == "A"


def test_a_test_going_live_moves_only_its_features_in_its_buckets() -> None:
    test = AbTest(
        "t",
        minute(0),
        minute(10),
        (TestGroup("g", 1.0, {"search": "A"}, frozenset({6, 7})),),
    )
    before, after = _applied(AbTestFact("t", test))
    assert set(before._views.keys) - _kept(before, after) == {ViewKey(6), ViewKey(7)}
    assert after.variants(6) == {"checkout": "A", "search": "A"}
    # Stopped being live with time: the same views move back, and only those.
    later = after.at(minute(11))
    assert set(after._views.keys) - _kept(after, later) == {ViewKey(6), ViewKey(7)}
    assert later.variants(6) == before.variants(6)


def test_what_a_change_reaches() -> None:
    config = Config.of(STATE)
    moved = config.with_facts(
        [RolloutFact("checkout", Rollout("checkout", "B", 0.5, frozenset(range(10))))]
    )
    change = changed_features(config, (), moved, live_tests(moved.abtests, minute(0)))
    assert change.features == {"checkout"} and change.buckets == frozenset(range(5, 10))
    assert change.reaches(ViewKey(7)) and not change.reaches(ViewKey(3, ("beta",)))
    assert changed_features(config, (), config, []).features == frozenset()
