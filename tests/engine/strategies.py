"""Small States and Changes for engine tests: a builder for examples, Hypothesis strategies."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from flaggery.engine.model import (
    AbTest,
    AbTestFact,
    BucketFact,
    Change,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    GrownTest,
    GrowthFact,
    Rollout,
    RolloutFact,
    State,
    Subject,
    SubjectColumns,
    SubjectFact,
    SubjectsFact,
    TestGroup,
)
from tests.engine.rules.samples import SAMPLE_RULES

T0 = datetime(2030, 1, 1, tzinfo=UTC)
FEATURES = ("checkout", "search", "theme")
VARIANTS = ("A", "B", "C")
GROUP_NAMES = ("beta", "staff", "vip")
TEST_NAMES = ("t1", "t2")
# Mostly a compact range (dense index), sometimes far-away ids (sparse index).
TEST_SALT = bytes(range(16))
"""The key salt of test states (a database gets 16 random bytes at migration)."""
SUBJECT_IDS = st.one_of(st.integers(-3, 40), st.sampled_from([-(2**63), 2**63 - 1, 10**12, 10**15]))


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def make_state(
    *,
    buckets: Iterable[int] = (),
    subjects: Mapping[int, Subject] | None = None,
    features: Iterable[Feature] = (),
    rollouts: Iterable[Rollout] = (),
    abtests: Iterable[AbTest] = (),
    groups: Iterable[Group] = (),
    revision: int = 1,
    key_salt: bytes = TEST_SALT,
) -> State:
    """A State from entity lists; subjects as id -> Subject (groups in join order)."""
    subjects = subjects or {}
    ids = sorted(subjects)
    return State(
        revision=revision,
        buckets=tuple(buckets),
        subjects=SubjectColumns(
            ids=array("q", ids),
            weights=array("q", [subjects[i].weight for i in ids]),
            buckets=array("q", [subjects[i].bucket for i in ids]),
        ),
        memberships={i: subjects[i].groups for i in ids if subjects[i].groups},
        features={feature.name: feature for feature in features},
        rollouts={rollout.feature: rollout for rollout in rollouts},
        abtests={test.name: test for test in abtests},
        groups={group.name: group for group in groups},
        key_salt=key_salt,
    )


# Test times on a grid of minutes, so that `now` often lands exactly on a start or an end.
times = st.builds(
    lambda n, tick: minute(n) + timedelta(microseconds=tick),
    st.integers(-1, 12),
    st.sampled_from([0, 0, 1, -1]),
)

# Strategies are built once here: building them per draw dominates the run time otherwise.
_feature_maps = st.dictionaries(st.sampled_from(FEATURES), st.sampled_from(VARIANTS), max_size=3)
_optional_variants = st.none() | st.sampled_from(VARIANTS)
_variants = st.sampled_from(VARIANTS)
_bucket_universe = st.frozensets(st.integers(0, 15))
_bucket_picks = st.integers(0, 15)
_minutes = st.integers(0, 10)
_group_counts = st.integers(2, 3)
_weights = st.integers(1, 5)
_join_orders = st.permutations(GROUP_NAMES)
_group_name_counts = st.integers(0, 3)
_deletions = st.booleans()
_fact_counts = st.integers(0, 4)
_change_counts = st.integers(1, 4)
_audiences = st.none() | st.sampled_from(GROUP_NAMES)
_rules = st.none() | st.sampled_from(SAMPLE_RULES)
_fact_kinds = st.sampled_from(
    ["subject", "subject", "subjects", "bucket", "growth", "feature", "rollout", "abtest", "group"]
)


def _some_buckets(draw: st.DrawFn, buckets: list[int]) -> frozenset[int]:
    return frozenset(buckets) & draw(_bucket_universe)


def _feature(draw: st.DrawFn, name: str) -> Feature:
    # One feature in five is killed: the kill switch's layer goes over every other.
    killed = draw(st.integers(0, 4)) == 0
    return Feature(name, VARIANTS, draw(_optional_variants), killed=killed)


def _rollout(draw: st.DrawFn, feature: str, buckets: list[int]) -> Rollout:
    proportion = draw(st.floats(0, 1))
    buckets_taken = _some_buckets(draw, buckets)
    return Rollout(feature, draw(_variants), proportion, buckets_taken, draw(_audiences))


def _abtest(draw: st.DrawFn, name: str, buckets: list[int]) -> AbTest:
    start = draw(_minutes)
    count = draw(_group_counts)
    groups = tuple(
        TestGroup(f"g{i}", 1 / count, draw(_feature_maps), _some_buckets(draw, buckets))
        for i in range(count)
    )
    end = minute(start + draw(_minutes) % (12 - start))
    return AbTest(name, minute(start), end, groups, draw(_audiences))


def _subject(draw: st.DrawFn, buckets: list[int]) -> Subject:
    groups = draw(_join_orders)[: draw(_group_name_counts)]
    return Subject(draw(_weights), buckets[draw(_bucket_picks) % len(buckets)], tuple(groups))


@st.composite
def states(draw: st.DrawFn) -> State:
    """A random, internally consistent State: a few of everything."""
    buckets = draw(st.lists(st.integers(0, 9), min_size=1, max_size=6, unique=True))
    ids = draw(st.sets(SUBJECT_IDS, max_size=12))
    return make_state(
        buckets=buckets,
        subjects={subject_id: _subject(draw, buckets) for subject_id in ids},
        features=[_feature(draw, name) for name in draw(st.sets(st.sampled_from(FEATURES)))],
        rollouts=[_rollout(draw, f, buckets) for f in draw(st.sets(st.sampled_from(FEATURES)))],
        abtests=[_abtest(draw, n, buckets) for n in draw(st.sets(st.sampled_from(TEST_NAMES)))],
        groups=[
            Group(n, draw(_feature_maps), draw(_rules))
            for n in draw(st.sets(st.sampled_from(GROUP_NAMES)))
        ],
        revision=draw(st.integers(0, 5)),
    )


def _fact(draw: st.DrawFn, buckets: list[int], known_subjects: list[int]) -> Fact:
    """One random fact; `buckets` grows when a bucket fact is drawn."""
    kind = draw(_fact_kinds)
    deleted = draw(_deletions)
    if kind == "bucket":
        buckets.append(max(buckets) + 1)
        return BucketFact(buckets[-1])
    if kind == "growth":
        return _growth(draw, buckets)
    if kind == "subject":
        known = st.sampled_from(known_subjects) if known_subjects else SUBJECT_IDS
        subject_id = draw(known | SUBJECT_IDS)
        return SubjectFact(subject_id, None if deleted else _subject(draw, buckets))
    if kind == "subjects":
        return _bulk_add(draw, buckets, known_subjects)
    if kind == "group":
        name = draw(st.sampled_from(GROUP_NAMES))
        group = Group(name, draw(_feature_maps), draw(_rules))
        return GroupFact(name, None if deleted else group)
    if kind == "abtest":
        name = draw(st.sampled_from(TEST_NAMES))
        return AbTestFact(name, None if deleted else _abtest(draw, name, buckets))
    name = draw(st.sampled_from(FEATURES))
    if kind == "rollout":
        return RolloutFact(name, None if deleted else _rollout(draw, name, buckets))
    return FeatureFact(name, None if deleted else _feature(draw, name))


def _bulk_add(draw: st.DrawFn, buckets: list[int], known_subjects: list[int]) -> SubjectsFact:
    """New subjects in bulk: an import batch just past the largest id (the dense fast path,
    sometimes after a gap) or ids anywhere; never a subject of the state (`add_subjects`
    refuses existing ids), though the same change log may add or remove them one by one."""
    if draw(st.booleans()):
        largest = max([i for i in known_subjects if i < 10**12], default=40)
        first = largest + 1 + draw(st.integers(0, 5))
        ids = list(range(first, first + draw(st.integers(1, 12))))
    else:
        known = set(known_subjects)
        ids = sorted(draw(st.sets(SUBJECT_IDS.filter(lambda i: i not in known), max_size=6)))
    weights = [draw(_weights) for _ in ids]
    picked = [buckets[draw(_bucket_picks) % len(buckets)] for _ in ids]
    return SubjectsFact.of(array("q", ids), array("q", weights), array("q", picked))


def _growth(draw: st.DrawFn, buckets: list[int]) -> GrowthFact:
    """New buckets, some taken by rollouts and test groups that may or may not exist."""
    first = max(buckets) + 1
    new = list(range(first, first + draw(st.integers(1, 3))))
    buckets.extend(new)
    taken = st.lists(st.sampled_from(new), unique=True).map(sorted)
    rollouts = draw(st.dictionaries(st.sampled_from(FEATURES), taken, max_size=3))
    tests = {
        name: GrownTest(
            tuple(draw(_feature_maps)),
            draw(st.dictionaries(st.sampled_from(["g0", "g1", "g2"]), taken, max_size=3)),
        )
        for name in draw(st.sets(st.sampled_from(TEST_NAMES)))
    }
    return GrowthFact(first, new[-1], rollouts, tests)


@st.composite
def changes(draw: st.DrawFn, state: State) -> list[Change]:
    """A few contiguous changes following `state`'s revision."""
    buckets = list(state.buckets)
    known_subjects = list(state.subjects.ids)
    return [
        Change(
            revision=state.revision + 1 + offset,
            operation="random",
            facts=tuple(_fact(draw, buckets, known_subjects) for _ in range(draw(_fact_counts))),
        )
        for offset in range(draw(_change_counts))
    ]
