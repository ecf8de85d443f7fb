"""An A/B test's health: exposure counts against the split its allocation implies (pure).

Registered subjects and hashed targeting keys are two populations with different expected
splits (share of the subjects, or of their weight, in each group's buckets; share of the
buckets), so each is tested on its own and the test's state is the worse of the two.
Counts are the first exposure of each unit during the test's window, by the group the client
reported (a stale answer counts where the client saw it: that is what makes the split drift).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from flaggery.engine.expected_shares import bucket_shares, subject_shares
from flaggery.engine.model import AbTest
from flaggery.engine.srm import HealthState, chi_squared_p, health_state, sequential_srm_p

__all__ = [
    "MULTIPLE_EXPOSURES_ALARM",
    "AbTestHealth",
    "BucketHealth",
    "GroupHealth",
    "PopulationHealth",
    "TestCounts",
    "health_of",
]

MULTIPLE_EXPOSURES_ALARM = 0.01
"""Repeated exposures above this fraction of live exposures are flagged."""
Population = Literal["subjects", "keys"]
_SEVERITY: dict[HealthState, int] = {"green": 0, "yellow": 1, "red": 2}


class TestCounts(msgspec.Struct, frozen=True):
    """One counters row: exposures reported for `group` by units of one population in one
    bucket."""

    __test__ = False  # not a pytest test class

    group: str
    hashed: bool
    bucket: int
    first: int = 0
    repeats: int = 0
    misassigned: int = 0
    early: int = 0
    late: int = 0


class GroupHealth(msgspec.Struct, frozen=True):
    name: str
    expected_share: float
    exposures: int
    """First exposures reported for this group."""


class PopulationHealth(msgspec.Struct, frozen=True):
    population: Population
    exposures: int
    groups: list[GroupHealth]
    chi_squared_p: float
    sequential_p: float
    state: HealthState


class BucketHealth(msgspec.Struct, frozen=True):
    bucket: int
    group: str | None
    """The test group holding the bucket."""
    population: Population
    exposures: int
    expected: float
    """Exposures expected in the bucket given the population's total."""


class AbTestHealth(msgspec.Struct, frozen=True):
    test: str
    state: HealthState
    populations: list[PopulationHealth]
    repeats: int
    misassigned: int
    """Live exposures whose reported group is not the one the allocation assigns (stale
    caches, stale edges, clients that pick a group themselves)."""
    early: int
    late: int
    multiple_exposures: bool
    """More than MULTIPLE_EXPOSURES_ALARM of live exposures were repeats."""
    buckets: list[BucketHealth]
    assignments: dict[str, int] = msgspec.field(default_factory=dict)
    """Group -> flags answers the servers served from its buckets while the test was live
    (what the server assigned, counted apart from what clients reported)."""


def health_of(
    test: AbTest,
    subject_tallies: Mapping[int, int],
    rows: Iterable[TestCounts],
    assignments: Mapping[str, int] | None = None,
) -> AbTestHealth:
    """The health of `test` from its counters `rows` and `subject_tallies` (bucket id ->
    registered subjects or weight in it, `expected_shares.bucket_tallies`) and `assignments`
    (group -> answers served, shown as given). The sequential p
    is that of the current counts (not a running minimum over earlier looks), which is valid
    and at worst slower to fall."""
    rows = list(rows)
    populations, buckets = [], []
    for hashed in (False, True):
        mine = [row for row in rows if row.hashed is hashed]
        if hashed and not any(row.first for row in mine):
            continue  # no hashed key exposed: nothing to show (subjects are always shown)
        population: Population = "keys" if hashed else "subjects"
        shares = bucket_shares(test) if hashed else subject_shares(test, subject_tallies)
        weights = {
            b: 1 if hashed else subject_tallies.get(b, 0) for g in test.groups for b in g.buckets
        }
        populations.append(_population(population, shares, mine))
        buckets += _buckets(test, population, mine, weights)
    total = sum(row.first + row.repeats for row in rows)
    repeats = sum(row.repeats for row in rows)
    return AbTestHealth(
        test=test.name,
        state=max((p.state for p in populations), key=_SEVERITY.__getitem__, default="green"),
        populations=populations,
        repeats=repeats,
        misassigned=sum(row.misassigned for row in rows),
        early=sum(row.early for row in rows),
        late=sum(row.late for row in rows),
        multiple_exposures=total > 0 and repeats / total > MULTIPLE_EXPOSURES_ALARM,
        buckets=buckets,
        assignments={g.name: (assignments or {}).get(g.name, 0) for g in test.groups},
    )


def _population(
    population: Population, shares: Mapping[str, float], rows: list[TestCounts]
) -> PopulationHealth:
    observed: Counter[str] = Counter()
    for row in rows:
        observed[row.group] += row.first
    counts = [observed[name] for name in shares]
    expected = list(shares.values())
    if sum(expected) == 0:  # the test's buckets hold no registered subject
        chi, sequential = 1.0, 1.0
        state: HealthState = "green"
    else:
        chi, sequential = chi_squared_p(counts, expected), sequential_srm_p(counts, expected)
        state = health_state(counts, expected, sequential)
    groups = [GroupHealth(name, shares[name], observed[name]) for name in shares]
    return PopulationHealth(population, sum(counts), groups, chi, sequential, state)


def _buckets(
    test: AbTest, population: Population, rows: list[TestCounts], weights: Mapping[int, int]
) -> list[BucketHealth]:
    """Per bucket: first exposures, and the population's total split by `weights` (bucket id
    -> its registered subjects or weight, or 1 each for hashed keys)."""
    observed: Counter[int] = Counter()
    for row in rows:
        observed[row.bucket] += row.first
    holder = {bucket: group.name for group in test.groups for bucket in group.buckets}
    total_weight, total = sum(weights.values()), sum(observed.values())
    return [
        BucketHealth(
            bucket,
            holder.get(bucket),
            population,
            observed[bucket],
            total * weights.get(bucket, 0) / total_weight if total_weight else 0.0,
        )
        for bucket in sorted(set(holder) | set(observed))
        if observed[bucket] or weights.get(bucket)
    ]
