"""Hashed keys through growth, with and without splits, on the engine alone (no database).

    python bench/key_lineage_bench.py [--keys 100000] [--buckets 100] [--subjects 10000]

Simulates ``increase_buckets`` on the engine's own functions: ``--buckets`` buckets (ids
1..B) filled lightest first with ``--subjects`` subjects of weight 1 to 10; five rollouts (10,
25, 50, 75, 90 %) and a 50/50 A/B test, set by the engine's walks; ``--keys`` UUID keys. Each
scenario is a sequence of ``increase_buckets`` amounts, run two ways on the same population:
*jump* (before migration 0016: new buckets dealt by count, keys by jump hash over all buckets)
and *splits* (the store's rule: a growth to m >= 2 times the buckets splits them when every
carry allows it, the children copying their parents' rollouts and test groups; keys by
`targeting.bucket_index`). For each:
keys moved, keys that changed the variant of any feature, keys moved into an old bucket (must
be 0), the chi-squared of the keys over the final buckets against its p = 0.001 limit, and
the worst rollout or group error by weight, in buckets, once new subjects fill the new
buckets. Prints a table and one JSON line, with the load average (counts, no timing).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

from flaggery.engine.allocation import (
    grow_abtest,
    grow_rollout,
    partition_buckets,
    place_subjects,
    rollout_buckets,
    split_carries,
)
from flaggery.engine.bucket_order import rollout_order
from flaggery.engine.targeting import bucket_index, key_hasher

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from report import print_measures  # noqa: E402

ROLLOUTS = (0.1, 0.25, 0.5, 0.75, 0.9)
TEST = "live-test"
SCENARIOS: dict[str, tuple[int, ...]] = {
    "double": (100,),
    "double_in_2_calls": (50, 50),
    "double_in_100_calls": (1,) * 100,
    "x1.5": (50,),
    "x2.5": (150,),
    "triple": (200,),
}
"""Scenario -> increase_buckets amounts, in units of --buckets / 100."""
MAX_GROWTH = 2
"""The most buckets a scenario adds, in multiples of --buckets."""


@dataclass
class Allocation:
    """Bucket ids 1..count and what each rollout and test group holds."""

    count: int
    rollouts: dict[str, set[int]]
    rollout_carries: dict[str, float]
    groups: list[set[int]]
    group_carries: list[float]
    splits: list[tuple[int, int]] = field(default_factory=list)
    weights: dict[int, int] = field(default_factory=dict)

    def worst_error(self, newcomers: list[int]) -> float:
        """After `newcomers` (weights) join lightest first: the largest distance of a
        rollout or test group from its target weight, in buckets of the mean weight."""
        weights = dict.fromkeys(range(1, self.count + 1), 0) | self.weights
        _, weights = place_subjects(weights, newcomers)
        total = sum(weights.values())
        mean = total / len(weights)
        held = [*zip(self.rollouts.values(), ROLLOUTS, strict=True)]
        held += [(group, 0.5) for group in self.groups]
        return max(abs(sum(weights[b] for b in h) - p * total) / mean for h, p in held)

    def membership(self, bucket: int) -> tuple[object, ...]:
        """What decides every variant of a unit in `bucket`."""
        held = tuple(bucket in self.rollouts[f] for f in sorted(self.rollouts))
        group = next(i for i, g in enumerate(self.groups) if bucket in g)
        return (*held, group)

    def deal(self, new_ids: list[int]) -> None:
        """Today's rule: new buckets by count, carries carried."""
        for feature, proportion in zip(sorted(self.rollouts), ROLLOUTS, strict=True):
            joined, _, carry = grow_rollout(
                new_ids, proportion, self.rollout_carries[feature], feature
            )
            self.rollouts[feature] |= set(joined)
            self.rollout_carries[feature] = carry
        dealt, carries = grow_abtest(new_ids, [0.5, 0.5], self.group_carries, TEST)
        for group, taken in zip(self.groups, dealt, strict=True):
            group |= set(taken)
        self.group_carries = carries

    def split_carries(self, m: int) -> bool:
        """Whether a split by `m` keeps every carry in bounds; if so, they take it."""
        rollouts = {}
        for feature, proportion in zip(sorted(self.rollouts), ROLLOUTS, strict=True):
            held, carry = len(self.rollouts[feature]), self.rollout_carries[feature]
            shares = [proportion, 1 - proportion]
            after = split_carries(shares, [held, self.count - held], [carry, -carry], self.count, m)
            if after is None:
                return False
            rollouts[feature] = after[0]
        counts = [len(group) for group in self.groups]
        groups = split_carries([0.5, 0.5], counts, self.group_carries, self.count, m)
        if groups is None:
            return False
        self.rollout_carries, self.group_carries = rollouts, groups
        return True

    def copy_parents(self, start: int, m: int) -> None:
        """A split: bucket id start+1+i*(m-1)+c (c < m-1) copies bucket id i+1."""
        for i in range(start):
            for c in range(m - 1):
                child = start + 1 + i * (m - 1) + c
                for held in (*self.rollouts.values(), *self.groups):
                    if i + 1 in held:
                        held.add(child)


def seed(buckets: int, subjects: int, rng: random.Random) -> Allocation:
    ids = list(range(1, buckets + 1))
    _, weights = place_subjects(
        dict.fromkeys(ids, 0), [rng.randint(1, 10) for _ in range(subjects)]
    )
    rollouts = {
        f"rollout-{n}": set(
            rollout_buckets(weights, frozenset(), p, rollout_order(f"rollout-{n}", ids, [], []))
        )
        for n, p in enumerate(ROLLOUTS)
    }
    groups, carries = partition_buckets(weights, [0.5, 0.5], TEST)
    return Allocation(
        buckets,
        rollouts,
        dict.fromkeys(rollouts, 0.0),
        [set(g) for g in groups],
        carries,
        [],
        dict(weights),
    )


def grow(allocation: Allocation, amount: int, *, splits: bool) -> None:
    """One increase_buckets(amount) by jump hash alone or with splits (the store's rule)."""
    count = allocation.count
    total = count + amount
    m = total // count if splits else 1
    if m >= 2 and allocation.split_carries(m):
        allocation.copy_parents(count, m)
        allocation.splits.append((count, m))
    else:
        m = 1
    rest = list(range(m * count + 1, total + 1))
    if rest:
        allocation.deal(rest)
    allocation.count = total


def chi_squared_limit(degrees: int, p: float = 0.001) -> float:
    """Wilson and Hilferty's approximation of the chi-squared quantile at 1 - p."""
    z = NormalDist().inv_cdf(1 - p)
    cube: float = (1 - 2 / (9 * degrees) + z * (2 / (9 * degrees)) ** 0.5) ** 3
    return degrees * cube


def measure(
    allocation: Allocation,
    amounts: Sequence[int],
    hashes: list[int],
    newcomers: list[int],
    *,
    splits: bool,
) -> dict[str, float]:
    """Grow `allocation` by `amounts` by jump hash alone or with `splits` and count what
    happened to the keys of `hashes`; `newcomers` (weights) fill the buckets after."""
    before = [_index_of(h, allocation) + 1 for h in hashes]
    seen = [allocation.membership(b) for b in before]
    old = allocation.count
    for amount in amounts:
        grow(allocation, amount, splits=splits)
    after = [_index_of(h, allocation) + 1 for h in hashes]
    changed = sum(allocation.membership(b) != s for b, s in zip(after, seen, strict=True))
    moved = sum(a != b for a, b in zip(after, before, strict=True))
    into_old = sum(a != b and a <= old for a, b in zip(after, before, strict=True))
    counts = Counter(after)
    expected = len(hashes) / allocation.count
    observed = [counts.get(b, 0) for b in range(1, allocation.count + 1)]
    chi = sum((o - expected) ** 2 / expected for o in observed)
    joining = len(newcomers) * (allocation.count - old) // (MAX_GROWTH * old)
    return {
        "moved_pct": round(100 * moved / len(hashes), 2),
        "changed_pct": round(100 * changed / len(hashes), 2),
        "moved_into_old": into_old,
        "chi2": round(chi, 1),
        "chi2_limit": round(chi_squared_limit(allocation.count - 1), 1),
        "worst_error_buckets": round(allocation.worst_error(newcomers[:joining]), 2),
    }


def run(keys: int, buckets: int, subjects: int) -> dict[str, object]:
    rng = random.Random(19)
    salt = rng.randbytes(16)
    hash_of = key_hasher(salt)
    hashes = [hash_of(str(uuid.UUID(int=rng.getrandbits(128), version=4))) for _ in range(keys)]
    # New subjects after growth: as many per new bucket as the old buckets hold.
    newcomers = [rng.randint(1, 10) for _ in range(MAX_GROWTH * subjects)]
    population = rng.getstate()
    results: dict[str, object] = {"keys": keys, "buckets": buckets}
    for name, amounts in SCENARIOS.items():
        scaled = [a * buckets // 100 for a in amounts]
        for design, splits in (("jump", False), ("splits", True)):
            rng.setstate(population)
            allocation = seed(buckets, subjects, rng)
            measures = measure(allocation, scaled, hashes, newcomers, splits=splits)
            for metric, value in measures.items():
                results[f"{name}.{design}.{metric}"] = value
    results["load_average"] = round(os.getloadavg()[0], 2)
    return results


def _index_of(hashed: int, allocation: Allocation) -> int:
    return bucket_index(hashed, allocation.count, allocation.splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--buckets", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=10_000)
    args = parser.parse_args()
    print_measures("key_lineage", run(args.keys, args.buckets, args.subjects))


if __name__ == "__main__":
    main()
