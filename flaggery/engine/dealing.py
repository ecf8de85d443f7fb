"""Dealing new, empty buckets among shares (test groups; a rollout's in and out) without drift.

New buckets hold no weight yet, but the subjects added next fill them, so each share must get
its proportion of them *by count*, across any number of ``increase_buckets`` calls: twenty
calls adding one bucket each must deal like one call adding twenty. Each share keeps a carry,
the count it is owed (+) or was overpaid (-); a bucket adds every share's proportion to its
carry and goes to one share, whose carry drops by 1.

Invariant, for any number of shares, from carries that start at 0: the carries sum to 0 and
each stays in (-1, 1], so every share's count is within one bucket of its target however the
growth was split into calls. Only a share owed more than nothing (carry > 0) may take a bucket
(so no carry reaches -1), and the choice must leave a state from which no carry ever has to
pass 1. Share i must take its m-th next bucket by the first step k at which
``carry_i + k x proportion_i > m``; such a state is safe exactly when, for every k, those
deadlines ask for at most k buckets in the next k steps. With two or three shares every state
in (-1, 1] is safe (two carries above 1 would need a third below -1); with more, two shares
both just paid (carries near -1) can force two others to come due together, which the check
sees.

Which share gets a bucket is drawn, in proportion to the positive carries, with the bucket's
stable hash in the dealer's own order: two tests (or rollouts) with the same proportions take
different new buckets, independently, and the chosen buckets are spread through the new ids, so
lightest-bucket placement (which fills equal buckets lowest id first) feeds every share in step
while the new buckets fill up. When the drawn share would leave an unsafe state, the share with
the earliest deadline takes the bucket instead (earliest deadline first keeps a safe state
safe).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from flaggery.engine.bucket_order import unit_intervals

__all__ = ["Deal", "deal_buckets", "is_safe"]

# Carries are sums of floats: 0.1 added ten times is 0.9999999999999999, and must count as 1.
_SLACK = 1e-9

Deal = tuple[list[list[int]], list[float]]
"""The buckets each share got (in id order), and each share's new carry."""


def deal_buckets(
    new_buckets: Sequence[int], shares: Sequence[float], carries: Sequence[float], salt: str
) -> Deal:
    """Deal `new_buckets` (in id order) among `shares` (normalized proportions) starting from
    `carries` (one per share; zeros the first time), drawing with the order named `salt`.
    O(len(new_buckets) x len(shares)) plus one hash per bucket (and, with four or more shares,
    a safety check that is usually O(shares))."""
    ordered = sorted(new_buckets)
    draws = unit_intervals(salt, ordered)
    if len(shares) == 2:
        return _deal_two(ordered, draws, shares, carries)
    carries = list(carries)
    dealt: list[list[int]] = [[] for _ in shares]
    for bucket, draw in zip(ordered, draws, strict=True):
        for share, proportion in enumerate(shares):
            carries[share] += proportion
        chosen = _choose(carries, shares, draw)
        dealt[chosen].append(bucket)
        carries[chosen] -= 1
    return dealt, carries


def _deal_two(
    ordered: list[int], draws: list[float], shares: Sequence[float], carries: Sequence[float]
) -> Deal:
    """`deal_buckets` for two shares (every rollout, most tests), in one loop: a share past 1
    must take the bucket (both cannot be), otherwise the draw decides. The same choices as the
    general rule, which every state of two shares in (-1, 1] passes."""
    first, second = carries
    share_first, share_second = shares
    dealt: list[list[int]] = [[], []]
    for bucket, draw in zip(ordered, draws, strict=True):
        first += share_first
        second += share_second
        if first > 1 + _SLACK:
            chosen = 0
        elif second > 1 + _SLACK:
            chosen = 1
        else:
            owed_first = first if first > _SLACK else 0.0
            owed_second = second if second > _SLACK else 0.0
            chosen = 0 if draw * (owed_first + owed_second) < owed_first else 1
        dealt[chosen].append(bucket)
        if chosen:
            second -= 1
        else:
            first -= 1
    return dealt, [first, second]


def _choose(carries: Sequence[float], shares: Sequence[float], draw: float) -> int:
    """The share that takes the bucket, given the carries with this bucket's proportions added
    (they sum to 1): the drawn one if that leaves a safe state, else the earliest deadline."""
    drawn = _drawn(carries, draw)
    after = list(carries)
    after[drawn] -= 1
    if is_safe(after, shares):
        return drawn
    return min(
        (share for share, carry in enumerate(carries) if carry > _SLACK),
        key=lambda share: (_deadline(carries[share], shares[share]), -carries[share], share),
    )


def _drawn(carries: Sequence[float], draw: float) -> int:
    """The share whose slice of the positive carries `draw` (in [0, 1)) falls in."""
    positive = [carry if carry > _SLACK else 0.0 for carry in carries]
    point = draw * sum(positive)
    last = 0
    for share, weight in enumerate(positive):
        if weight:
            if point < weight:
                return share
            point -= weight
            last = share
    return last  # only reached through float rounding at the very top of the range


def _deadline(carry: float, proportion: float) -> float:
    """Steps the share can still go without a bucket before its carry passes 1."""
    if proportion <= 0:
        return math.inf if carry <= 1 + _SLACK else -math.inf
    return (1 + _SLACK - carry) / proportion


def is_safe(carries: Sequence[float], shares: Sequence[float]) -> bool:
    """Whether dealing can go on from `carries` (after a bucket was dealt; summing to 0, each
    above -1) with every carry staying at most 1, whatever comes next.

    For every k >= 1, the buckets due within k steps (share i: the integers m >= 1 below
    ``carry_i + k x proportion_i``) must be at most k. Their count is below k plus the
    negative part of the carries at step k, so only the k while that exceeds 1 need checking:
    usually none.
    """
    if max(carries) > 1 + _SLACK:
        return False
    k = 1
    while True:
        ahead = [carry + k * proportion for carry, proportion in zip(carries, shares, strict=True)]
        if -sum(value for value in ahead if value < 0) <= 1 + _SLACK:
            return True
        due = sum(math.ceil(value - _SLACK) - 1 for value in ahead if value > _SLACK)
        if due > k:
            return False
        if all(
            value >= 0 or proportion <= 0 for value, proportion in zip(ahead, shares, strict=True)
        ):
            return True  # only shares that never take a bucket are still negative
        k += 1
