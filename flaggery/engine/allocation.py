"""Where subjects and buckets go: the allocation rules the store applies when it writes.

Pure functions of bucket weights (bucket id -> sum of its subjects' weights). They decide
placement once, at write time; resolution only ever reads the result.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from flaggery.errors import InvalidRolloutProportion, NoBuckets, ValidationError

__all__ = [
    "lightest_bucket",
    "partition_buckets",
    "place_subjects",
    "rollout_buckets",
    "rollout_share_of_new_buckets",
    "split_new_buckets",
]

# proportion x count is computed in floating point: 0.29 x 100 is 28.999999999999996, and
# rounding it down must still give 29.
_ROUNDING_SLACK = 1e-9


def lightest_bucket(bucket_weights: Mapping[int, int]) -> int:
    """The bucket with the lowest total weight; ties go to the lowest id."""
    if not bucket_weights:
        raise _no_buckets()
    return min(bucket_weights, key=lambda bucket: (bucket_weights[bucket], bucket))


def place_subjects(bucket_weights: Mapping[int, int], weights: Sequence[int]) -> list[int]:
    """The bucket of each new subject, in order, as if each went to the lightest bucket in turn.

    A heap of (weight, bucket id) makes this O(n log B) instead of a scan per subject; the
    tuple order breaks ties by lowest id exactly like `lightest_bucket`.
    """
    if not weights:
        return []
    if not bucket_weights:
        raise _no_buckets()
    heap = [(weight, bucket) for bucket, weight in bucket_weights.items()]
    heapq.heapify(heap)
    placed = []
    for weight in weights:
        bucket_weight, bucket = heap[0]
        heapq.heapreplace(heap, (bucket_weight + weight, bucket))
        placed.append(bucket)
    return placed


def rollout_buckets(
    bucket_weights: Mapping[int, int], current: frozenset[int], proportion: float
) -> frozenset[int]:
    """The buckets of a rollout after its proportion is set to `proportion`.

    Buckets with weight and empty buckets are handled separately:

    - Weighted buckets: the target is ``proportion x total weight``. If it is above the
      current effective weight (the sum of the rollout's bucket weights) the rollout is being
      *raised* and buckets are only added; if below, *lowered* and buckets are only removed.
      Either way a greedy step repeatedly moves the bucket whose weight is closest to the
      remaining gap (ties: lowest id) while that strictly shrinks ``|target - effective|``;
      see `_closest_moves` for the one refinement that keeps later moves one-way. Starting
      from no bucket the result lands within half the largest bucket weight of the target, and
      from any start within the largest bucket weight (0.2.1 scanned in id order and stopped at
      the first overshoot, undershooting by a whole bucket or more).
    - Empty buckets are shared by count: the rollout holds ``floor(proportion x empty count)``
      of them, adding lowest ids first when raised and removing highest ids first when lowered.
      When the weighted target equals the effective weight, the empty share sets the direction.

    So proportion 0 yields no bucket, proportion 1 every bucket, and raising the proportion
    step by step only ever adds buckets (lowering it only removes them): subjects that see the
    rolled-out variant keep it while a rollout grows.
    """
    _check_proportion(proportion)
    current = current.intersection(bucket_weights)
    members = {b: w for b, w in bucket_weights.items() if w > 0 and b in current}
    others = {b: w for b, w in bucket_weights.items() if w > 0 and b not in current}
    empty_held = sorted(b for b in current if bucket_weights[b] == 0)
    empty_spare = sorted(b for b, w in bucket_weights.items() if w == 0 and b not in current)
    effective = sum(members.values())
    target = proportion * (effective + sum(others.values()))
    empty_wanted = _round_down(proportion * (len(empty_held) + len(empty_spare)))
    if target > effective or (target == effective and empty_wanted > len(empty_held)):
        added = _closest_moves(others, target - effective, members.values())
        added += empty_spare[: max(0, empty_wanted - len(empty_held))]
        return current | frozenset(added)
    removed = _closest_moves(members, effective - target, others.values())
    removed += empty_held[::-1][: max(0, len(empty_held) - empty_wanted)]
    return current - frozenset(removed)


def _closest_moves(pool: Mapping[int, int], gap: float, across: Iterable[int]) -> list[int]:
    """Buckets to move from `pool` to the other side so their weights sum close to `gap`.

    `across` are the weights already on the other side. Each step moves the bucket whose
    weight is closest to the remaining gap (lowest id on ties) while that strictly shrinks
    ``|gap|``, i.e. ``0 < weight < 2 x gap``. One refinement: a step that would overshoot by
    ``o`` is taken only if ``2 x o`` is at most every weight on the other side. Then no
    single bucket moved back would get closer, so a later push in the same direction (a
    rollout raised again) never wants to undo it; otherwise the closest weight below the gap
    is taken, if any. The pool is kept sorted by (weight, id) so each step is a bisection.
    """
    ordered = sorted(pool.items(), key=lambda item: (item[1], item[0]))
    weights = [weight for _, weight in ordered]
    ids = [bucket for bucket, _ in ordered]
    smallest_across = min(across, default=math.inf)
    moved = []
    while gap > 0:
        position = _best_move(weights, ids, gap, smallest_across)
        if position is None:
            break
        weight = weights.pop(position)
        moved.append(ids.pop(position))
        gap -= weight
        smallest_across = min(smallest_across, weight)
    return moved


def _best_move(
    weights: list[int], ids: list[int], gap: float, smallest_across: float
) -> int | None:
    """Position of the acceptable weight closest to `gap` (lowest id among equally close)."""
    above = bisect_left(weights, gap)
    candidates = []
    if above < len(weights):
        overshoot = weights[above] - gap
        if overshoot < gap and 2 * overshoot <= smallest_across:
            candidates.append(above)  # first of its run of equal weights, hence the lowest id
    if above > 0:
        candidates.append(bisect_left(weights, weights[above - 1]))
    return min(
        candidates, key=lambda position: (abs(weights[position] - gap), ids[position]), default=None
    )


def partition_buckets(
    bucket_weights: Mapping[int, int], proportions: Sequence[float]
) -> list[frozenset[int]]:
    """Split every bucket among A/B-test groups, group i getting about proportions[i].

    Weighted buckets go largest first (ties: lowest id) to the group furthest below its target
    weight ``proportion x total weight`` (ties: first group); each group ends within the largest
    bucket weight of its target. Empty buckets are split by count with `split_new_buckets`.
    """
    weighted = sorted(
        ((weight, bucket) for bucket, weight in bucket_weights.items() if weight > 0),
        key=lambda item: (-item[0], item[1]),
    )
    total = sum(weight for weight, _ in weighted)
    shares = _normalized(proportions)
    deficits = [share * total for share in shares]
    groups: list[set[int]] = [set() for _ in shares]
    for weight, bucket in weighted:
        neediest = max(range(len(shares)), key=lambda group: (deficits[group], -group))
        groups[neediest].add(bucket)
        deficits[neediest] -= weight
    empty = sorted(bucket for bucket, weight in bucket_weights.items() if weight == 0)
    empty_groups = split_new_buckets(empty, shares)
    return [frozenset(group) | extra for group, extra in zip(groups, empty_groups, strict=True)]


def split_new_buckets(
    new_bucket_ids: Sequence[int], proportions: Sequence[float]
) -> list[frozenset[int]]:
    """Split empty buckets by count among test groups (largest remainder method).

    Group i gets ``floor(proportion_i x count)`` buckets, and the buckets left over go one each
    to the groups with the largest fractional remainders (ties: first group). Ids are handed
    out in ascending order, group by group.
    """
    ordered = sorted(new_bucket_ids)
    counts = _largest_remainder_counts(len(ordered), _normalized(proportions))
    groups = []
    start = 0
    for count in counts:
        groups.append(frozenset(ordered[start : start + count]))
        start += count
    return groups


def rollout_share_of_new_buckets(
    new_bucket_ids: Sequence[int], proportion: float
) -> frozenset[int]:
    """The new empty buckets a rollout joins: floor(proportion x count), lowest ids first."""
    _check_proportion(proportion)
    return frozenset(sorted(new_bucket_ids)[: _round_down(proportion * len(new_bucket_ids))])


def _largest_remainder_counts(count: int, shares: Sequence[float]) -> list[int]:
    quotas = [share * count for share in shares]
    counts = [_round_down(quota) for quota in quotas]
    by_remainder = sorted(
        range(len(shares)), key=lambda group: (counts[group] - quotas[group], group)
    )
    for group in by_remainder[: count - sum(counts)]:
        counts[group] += 1
    return counts


def _normalized(proportions: Sequence[float]) -> list[float]:
    # Proportions are validated to sum to 1, but only up to float error; normalizing keeps the
    # leftover of the largest remainder method below the number of groups.
    total = sum(proportions)
    if not proportions or total <= 0:
        raise ValidationError("Group proportions must be positive and sum to 1.")
    return [proportion / total for proportion in proportions]


def _round_down(quantity: float) -> int:
    return math.floor(quantity + _ROUNDING_SLACK)


def _check_proportion(proportion: float) -> None:
    if not 0 <= proportion <= 1:
        raise InvalidRolloutProportion(
            f"A rollout proportion must be between 0 and 1, got {proportion}."
        )


def _no_buckets() -> NoBuckets:
    return NoBuckets("There are no buckets yet. Call increase_buckets(amount) first.")
