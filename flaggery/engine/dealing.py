"""Dealing new, empty buckets among shares (test groups; a rollout's in and out) without drift.

New buckets hold no weight yet, but the subjects added next fill them, so each share must get
its proportion of them *by count*, across any number of ``increase_buckets`` calls: twenty
calls adding one bucket each must deal like one call adding twenty. Each share keeps a carry,
the count it is owed (+) or was overpaid (-); a bucket adds every share's proportion to its
carry and goes to one share, whose carry drops by 1. Carries sum to 0 and stay above -1, so
below (shares - 1): with two shares (a rollout; a 50/50 test) every share's count is within
one bucket of its target, however the growth was split into calls.

Which share gets a bucket is forced when a carry reaches 1 and otherwise drawn, in proportion
to the positive carries, with the bucket's stable hash in the dealer's own order: two tests
(or rollouts) with the same proportions take different new buckets, independently, and the
chosen buckets are spread through the new ids, so lightest-bucket placement (which fills equal
buckets lowest id first) feeds every share in step while the new buckets fill up.
"""

from __future__ import annotations

from collections.abc import Sequence

from flaggery.engine.bucket_order import unit_interval

__all__ = ["Deal", "deal_buckets"]

# Carries are sums of floats: 0.1 added ten times is 0.9999999999999999, and must count as 1.
_SLACK = 1e-9

Deal = tuple[list[list[int]], list[float]]
"""The buckets each share got (in id order), and each share's new carry."""


def deal_buckets(
    new_buckets: Sequence[int], shares: Sequence[float], carries: Sequence[float], salt: str
) -> Deal:
    """Deal `new_buckets` (in id order) among `shares` (normalized proportions) starting from
    `carries` (one per share; zeros the first time), drawing with the order named `salt`.
    O(len(new_buckets) x len(shares)) plus one hash per bucket."""
    carries = list(carries)
    dealt: list[list[int]] = [[] for _ in shares]
    for bucket in sorted(new_buckets):
        for share, proportion in enumerate(shares):
            carries[share] += proportion
        chosen = _choose(carries, unit_interval(salt, bucket))
        dealt[chosen].append(bucket)
        carries[chosen] -= 1
    return dealt, carries


def _choose(carries: Sequence[float], draw: float) -> int:
    """The share owed a whole bucket if any (the most owed; ties: first), else the share whose
    slice of the positive carries `draw` (in [0, 1)) falls in."""
    most_owed = max(range(len(carries)), key=lambda share: (carries[share], -share))
    if carries[most_owed] >= 1 - _SLACK:
        return most_owed
    positive = [max(carry, 0.0) for carry in carries]
    point = draw * sum(positive)
    for share, weight in enumerate(positive):
        if point < weight:
            return share
        point -= weight
    return most_owed  # only reached through float rounding at the very top of the range
