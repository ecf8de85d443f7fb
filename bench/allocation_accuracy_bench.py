"""How far A/B-test groups end from their targets after growth, over random populations.

    python bench/allocation_accuracy_bench.py                 # 4,000 populations
    PYTHONPATH=/path/to/checkout python bench/allocation_accuracy_bench.py   # older code

No database: the engine's allocation functions (flaggery.engine.allocation) as the store calls
them. Each case: 1-30 buckets, 0-120 subjects of weight 1-50 placed lightest first, a test of
two or three groups (random proportions), one to six growths of 1-7 buckets. Then two ways to
fill the new and empty buckets: "to the mean" (each empty bucket gets one subject of the
mean bucket weight, rounded: what allocation can plan for) and "by subjects" (ten random
subjects per new bucket, placed lightest first: what happens). Reports the worst group error
in units of the largest bucket weight, and how many cases had a group more than one bucket
(plus the rounding of the mean) off. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import random

from report import print_measures

import flaggery
from flaggery.engine.allocation import grow_abtest, partition_buckets, place_subjects


def one_case(rng: random.Random, case: int, by_subjects: bool) -> tuple[float, bool]:
    """(worst group error / largest bucket weight, whether it broke the one-bucket bound)."""
    weights = dict.fromkeys(range(1, rng.randint(1, 30) + 1), 0)
    subjects = [rng.randint(1, 50) for _ in range(rng.randint(0, 120))]
    weights = place_subjects(weights, subjects)[1]
    parts = [rng.randint(1, 5) for _ in range(rng.randint(2, 3))]
    shares = [part / sum(parts) for part in parts]
    dealt, carries = partition_buckets(weights, shares, f"t{case}")
    groups = [set(group) for group in dealt]
    growth = [rng.randint(1, 7) for _ in range(rng.randint(1, 6))]
    for amount in growth:
        new = list(range(max(weights) + 1, max(weights) + 1 + amount))
        more, carries = grow_abtest(new, shares, carries, f"t{case}")
        groups = [group | set(extra) for group, extra in zip(groups, more, strict=True)]
        weights |= dict.fromkeys(new, 0)
    weighted = [weight for weight in weights.values() if weight]
    mean = sum(weighted) / len(weighted) if weighted else 10.0
    level = max(1, round(mean))
    empty = {bucket for bucket, weight in weights.items() if weight == 0}
    if by_subjects:
        subjects = [rng.randint(1, 50) for _ in range(10 * sum(growth))]
        weights = place_subjects(weights, subjects)[1]
    else:
        weights |= dict.fromkeys(empty, level)
    total, largest = sum(weights.values()), max(weights.values())
    worst, broke = 0.0, False
    for group, share in zip(groups, shares, strict=True):
        error = abs(sum(weights[bucket] for bucket in group) - share * total)
        rounding = 0 if by_subjects else abs(level - mean) * len(empty & group)
        worst = max(worst, error / largest)
        broke |= error > largest + rounding + 1e-6
    return worst, broke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result: dict[str, object] = {"code": flaggery.__file__ or "?", "cases": args.cases}
    for label, by_subjects in (("to_mean", False), ("by_subjects", True)):
        rng = random.Random(args.seed)
        outcomes = [one_case(rng, case, by_subjects) for case in range(args.cases)]
        result[f"{label}_worst_buckets"] = round(max(worst for worst, _ in outcomes), 2)
        result[f"{label}_over_one_bucket"] = sum(broke for _, broke in outcomes)
    print_measures("allocation_accuracy", result)


if __name__ == "__main__":
    main()
