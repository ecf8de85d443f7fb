"""Where subjects and buckets go: the allocation rules the store applies when it writes.

Pure functions of bucket weights (bucket id -> sum of its subjects' weights). They decide
placement once, at write time; resolution only ever reads the result.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from operator import lshift

from flaggery.engine.bucket_order import abtest_salt, keyed_order, rollout_salt
from flaggery.engine.dealing import Deal, deal_buckets, is_safe
from flaggery.errors import InvalidRolloutProportion, NoBuckets, ValidationError

__all__ = [
    "LIKE_KEY_TOLERANCE",
    "grow_abtest",
    "grow_rollout",
    "lightest_bucket",
    "like_key_bucket",
    "partition_buckets",
    "place_subjects",
    "rollout_buckets",
    "split_carries",
]


def lightest_bucket(bucket_weights: Mapping[int, int]) -> int:
    """The bucket with the lowest total weight; ties go to the lowest id."""
    if not bucket_weights:
        raise _no_buckets()
    return min(bucket_weights, key=lambda bucket: (bucket_weights[bucket], bucket))


LIKE_KEY_TOLERANCE = 0.05
"""How much heavier than the lightest bucket a targeting key's bucket may be, as a share of
the mean bucket weight, for a new subject to join it (see `like_key_bucket`)."""


def like_key_bucket(
    bucket_weights: Mapping[int, int], key_bucket: int, weight: int
) -> tuple[int, str | None]:
    """Where a new subject of `weight` goes to keep the variants of the key that hashes to
    `key_bucket`: that bucket, unless it is heavier than the lightest by more than the
    tolerance, the larger of `weight` and LIKE_KEY_TOLERANCE of the mean bucket weight; then
    the lightest bucket, with the reason (else None). Lightest-bucket placement keeps every
    bucket within one subject's weight of the lightest; this keeps them within the tolerance
    plus one subject's weight, so a rollout's share of registered weight stays within about
    5 % (relative) of its share of buckets."""
    lightest = lightest_bucket(bucket_weights)
    mean = sum(bucket_weights.values()) / len(bucket_weights)
    tolerance = max(weight, LIKE_KEY_TOLERANCE * mean)
    excess = bucket_weights[key_bucket] - bucket_weights[lightest]
    if excess <= tolerance:
        return key_bucket, None
    return lightest, (
        f"The key's bucket {key_bucket} weighs {excess} more than the lightest bucket "
        f"{lightest}, beyond the tolerance of {tolerance:g} (the larger of the subject's "
        f"weight and {LIKE_KEY_TOLERANCE:.0%} of the mean bucket weight): placed in bucket "
        f"{lightest} to keep the buckets balanced; the key's variants may differ."
    )


def place_subjects(
    bucket_weights: Mapping[int, int], weights: Sequence[int]
) -> tuple[array[int], dict[int, int]]:
    """The bucket of each new subject, in order, as if each went to the lightest bucket in turn
    (ties: lowest id), and every bucket's weight afterwards.

    A heap makes this O(n log B) instead of a scan per subject. Its entries are single ints,
    ``weight << shift | rank`` (rank: the bucket's position in id order), which order exactly
    like (weight, id) tuples and compare faster: about 0.25 µs a subject. Returns the buckets
    as an ``array('q')``; raises NoBuckets if there are subjects but no bucket.
    """
    if weights and not bucket_weights:
        raise _no_buckets()
    order = sorted(bucket_weights)
    shift = len(order).bit_length()
    rank_of = (1 << shift) - 1
    heap = [bucket_weights[bucket] << shift | rank for rank, bucket in enumerate(order)]
    heapq.heapify(heap)
    ranks = array("I")
    append, replace = ranks.append, heapq.heapreplace
    for increment in map(lshift, weights, repeat(shift)):
        key = heap[0]
        replace(heap, key + increment)
        append(key & rank_of)
    after = {order[key & rank_of]: key >> shift for key in heap}
    return array("q", map(order.__getitem__, ranks)), after


def rollout_buckets(
    bucket_weights: Mapping[int, int],
    current: frozenset[int],
    proportion: float,
    order: Sequence[int],
    *,
    raising: bool | None = None,
) -> frozenset[int]:
    """The buckets of a rollout after its proportion is set to `proportion` (0 to 1).

    `order` is the rollout's bucket order (`bucket_order.rollout_order`: its own, independent
    of every other feature's). The target is ``proportion x total weight``. Above the current
    effective weight (the sum of the held buckets' weights) the rollout is *raised*: buckets
    not held are added in `order` while the next one's weight is at most twice the remaining
    gap (and the gap is positive). Otherwise *lowered*: held buckets are removed from the end of
    `order` while the last one's weight is under twice the excess (an empty one: while the
    excess is not negative). Proportion 0 holds no bucket and 1 every bucket.

    So raising only adds and lowering only removes (subjects keep the variant while a rollout
    grows), and the result is within half a bucket's weight of the target (the bucket that
    stopped the walk). A rollout holding a prefix of `order` keeps holding one, and the two
    stopping rules mirror each other, so lowering and raising back to a proportion held before
    (with nothing else changed) gives back exactly the same buckets. O(buckets).

    ``raising`` (the proportion goes up: True; down: False) fixes the direction instead: once
    the weights changed since the last move (new buckets filling up), the held set can be
    above a higher target or below a lower one, and a raise then keeps every bucket rather
    than taking some away (a lowering adds none).
    """
    _check_proportion(proportion)
    if proportion in (0, 1):  # the walks stop at equality, which could leave empty buckets
        return frozenset(bucket_weights) if proportion else frozenset()
    held = set(current.intersection(bucket_weights))
    effective = sum(bucket_weights[bucket] for bucket in held)
    target = proportion * sum(bucket_weights.values())
    if (target > effective) if raising is None else raising:
        for bucket in (b for b in order if b not in held and b in bucket_weights):
            gap = target - effective
            if gap <= 0 or bucket_weights[bucket] > 2 * gap:
                break
            held.add(bucket)
            effective += bucket_weights[bucket]
    else:
        for bucket in (b for b in reversed(order) if b in held):
            excess, weight = effective - target, bucket_weights[bucket]
            # The mirror of the raise rule: keep exactly what raising would have added.
            if excess < 0 or (weight > 0 and weight >= 2 * excess):
                break
            held.remove(bucket)
            effective -= bucket_weights[bucket]
    return frozenset(held)


def partition_buckets(
    bucket_weights: Mapping[int, int], proportions: Sequence[float], test: str
) -> Deal:
    """Split every bucket among the groups of A/B test `test`, group i getting about
    proportions[i] of the weight. Returns each group's buckets and its carry (for growth).

    Weighted buckets are walked in the test's own order (`bucket_order.keyed_order`, so tests
    with different names split independently) and each goes to the group furthest below its
    target weight ``proportion x total weight`` (ties: first group); a rebalancing pass then
    leaves every group, for any number of groups, within the largest bucket weight of its
    target (above it by less). That bound is tight: two buckets of weight w and three equal
    groups leave one group empty, under by 2w/3, and more groups bring it towards w.

    The groups' carries start from that remaining weight error, in buckets of the mean weight
    (scaled into (-1, 1] if need be): a group left under its target is owed more of the new
    buckets, which fill up to about that weight, so growth evens the error out instead of
    adding a count error to it. Empty buckets are then dealt by count like new buckets
    (`dealing.deal_buckets`). O(buckets x groups) plus the rebalancing.
    """
    shares = _normalized(proportions)
    salt = abtest_salt(test)
    weighted = keyed_order(salt, (b for b, w in bucket_weights.items() if w > 0))
    deficits = [share * sum(bucket_weights.values()) for share in shares]
    groups: list[list[int]] = [[] for _ in shares]
    for bucket in weighted:
        neediest = max(range(len(shares)), key=lambda group: (deficits[group], -group))
        groups[neediest].append(bucket)
        deficits[neediest] -= bucket_weights[bucket]
    _rebalance(groups, deficits, bucket_weights)
    empty = [bucket for bucket, weight in bucket_weights.items() if weight == 0]
    owed = _owed(deficits, shares, bucket_weights.values())
    dealt, carries = deal_buckets(empty, shares, owed, salt)
    return [sorted(g + extra) for g, extra in zip(groups, dealt, strict=True)], carries


def _owed(
    deficits: Sequence[float], shares: Sequence[float], weights: Iterable[int]
) -> list[float]:
    """The partition's weight error as carries, in buckets of the mean weight: what each group
    is owed of the new buckets that will fill up to about that weight.

    Scaled down (all alike, so they still sum to 0) into (-1, 1] and until dealing can keep
    them there (`dealing.is_safe`; zeros always can).
    """
    weighted = [weight for weight in weights if weight > 0]
    if not weighted:
        return [0.0] * len(deficits)
    mean = sum(weighted) / len(weighted)
    owed = [deficit / mean for deficit in deficits]
    owed = [carry - sum(owed) / len(owed) for carry in owed]  # exactly 0 in sum, not nearly
    scale = min([1.0, *(1 / o for o in owed if o > 1), *(0.99 / -o for o in owed if o < -0.99)])
    for _ in range(20):
        scaled = [carry * scale for carry in owed]
        if is_safe(scaled, shares):
            return scaled
        scale /= 2
    return [0.0] * len(deficits)


def _rebalance(
    groups: list[list[int]], deficits: list[float], bucket_weights: Mapping[int, int]
) -> None:
    """Improve a greedy partition in place: move a bucket, or swap two, between the most-over
    and the most-under group while that strictly lowers the sum of squared errors.

    The greedy walk in hash order (which makes tests independent) leaves every group over its
    target by less than the largest bucket weight, but with three or more groups one can end
    under by up to (groups - 1) of them. A step never raises the worst excess nor lowers the
    worst deficit. After one step per bucket, steps go on only while a group is under by more
    than the largest bucket weight; one always exists then (any bucket of the most-over group
    moves less than the spread), and the squared errors fall with each, so it ends with every
    group within the largest bucket weight of its target. Each step O(buckets log buckets).
    """
    largest = max(bucket_weights.values(), default=0)
    budget = sum(map(len, groups))
    while True:
        over = min(range(len(groups)), key=lambda group: (deficits[group], group))
        under = max(range(len(groups)), key=lambda group: (deficits[group], -group))
        if budget <= 0 and deficits[under] <= largest:
            return
        spread = deficits[under] - deficits[over]
        step = _best_transfer(groups[over], groups[under], spread, bucket_weights)
        if step is None:
            return
        budget -= 1
        give, take = step
        groups[over].remove(give)
        groups[under].append(give)
        if take is not None:
            groups[under].remove(take)
            groups[over].append(take)
        moved = bucket_weights[give] - (0 if take is None else bucket_weights[take])
        deficits[over] += moved
        deficits[under] -= moved


def _best_transfer(
    over: list[int], under: list[int], spread: float, bucket_weights: Mapping[int, int]
) -> tuple[int, int | None] | None:
    """(bucket to give, bucket to take back or None) moving weight closest to spread / 2;
    None unless it moves strictly between 0 and `spread` (what lowers the squared errors)."""
    by_weight = sorted(under, key=lambda bucket: (bucket_weights[bucket], bucket))
    weights = [bucket_weights[bucket] for bucket in by_weight]
    best: tuple[float, int, int | None] | None = None
    for give in sorted(over):
        wanted = bucket_weights[give] - spread / 2  # the weight to take back
        position = bisect_left(weights, wanted)
        options: list[int | None] = [None]
        options += [by_weight[i] for i in (position - 1, position) if 0 <= i < len(weights)]
        for take in options:
            moved = bucket_weights[give] - (0 if take is None else bucket_weights[take])
            if 0 < moved < spread and (best is None or abs(spread - 2 * moved) < best[0]):
                best = (abs(spread - 2 * moved), give, take)
    return None if best is None else (best[1], best[2])


def grow_abtest(
    new_buckets: Sequence[int], proportions: Sequence[float], carries: Sequence[float], test: str
) -> Deal:
    """Each group's share of new empty buckets, carrying the remainder across calls."""
    return deal_buckets(new_buckets, _normalized(proportions), carries, abtest_salt(test))


def split_carries(
    proportions: Sequence[float],
    counts: Sequence[int],
    carries: Sequence[float],
    buckets: int,
    multiple: int,
) -> list[float] | None:
    """The carries of shares (a rollout's in and out; a test's groups) after a split of
    `buckets` buckets by `multiple`, the shares holding `counts` of them: each takes
    (multiple - 1) x count of the new buckets where dealing would give it proportion x
    (multiple - 1) x buckets, and its carry takes the difference. None if a carry would leave
    (-1, 1] or dealing could not keep them there (`dealing.is_safe`): then the growth must be
    dealt by count instead, so every count stays within one bucket of its target."""
    shares = _normalized(proportions)
    added = multiple - 1
    after = [
        carry + (share * buckets - count) * added
        for share, count, carry in zip(shares, counts, carries, strict=True)
    ]
    if all(-1 + _SPLIT_SLACK < carry <= 1 + _SPLIT_SLACK for carry in after) and is_safe(
        after, shares
    ):
        return after
    return None


# Carries are sums of floats (as in flaggery.engine.dealing).
_SPLIT_SLACK = 1e-9


def grow_rollout(
    new_buckets: Sequence[int], proportion: float, carry: float, feature: str
) -> tuple[list[int], list[int], float]:
    """(buckets the rollout takes, buckets it leaves, new carry) for new empty buckets: about
    ``proportion`` of them by count, within one bucket across any sequence of calls."""
    _check_proportion(proportion)
    (joined, declined), (carry, _) = deal_buckets(
        new_buckets, [proportion, 1 - proportion], [carry, -carry], rollout_salt(feature)
    )
    return joined, declined, carry


def _normalized(proportions: Sequence[float]) -> list[float]:
    # Proportions are validated to sum to 1, but only up to float error; normalized, the
    # carries of dealt buckets keep summing to 0.
    total = sum(proportions)
    if not proportions or total <= 0:
        raise ValidationError("Group proportions must be positive and sum to 1.")
    return [proportion / total for proportion in proportions]


def _check_proportion(proportion: float) -> None:
    if not 0 <= proportion <= 1:
        raise InvalidRolloutProportion(
            f"A rollout proportion must be between 0 and 1, got {proportion}."
        )


def _no_buckets() -> NoBuckets:
    return NoBuckets("There are no buckets yet. Call increase_buckets(amount) first.")
