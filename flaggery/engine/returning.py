"""Placing new subjects when some of them come back: a subject id registered again gets the
bucket it had (so it stays in its A/B test arm and rollout state), the others the lightest.

The store remembers removed subjects' buckets (flaggery.store.removed_subjects); this is the
placement rule over them, pure like the rest of flaggery.engine.allocation.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Mapping, Sequence

from flaggery.engine.allocation import place_subjects
from flaggery.errors import NoBuckets

__all__ = ["place_returning_subjects"]


def place_returning_subjects(
    bucket_weights: Mapping[int, int], weights: Sequence[int], returning: Mapping[int, int]
) -> tuple[array[int], dict[int, int]]:
    """`place_subjects`, except that the subject at position ``i`` in ``returning`` goes to
    bucket ``returning[i]`` (one of ``bucket_weights``), exactly as one-by-one insertion in
    order would place them: a returning subject's weight counts towards its bucket from its
    turn on. Returns each subject's bucket (``array('q')``) and every bucket's weight after.

    O(n log B) with a lazily updated heap; without returning subjects, `place_subjects`
    itself. Raises NoBuckets if there are subjects to place by weight but no bucket.
    """
    if not returning:
        return place_subjects(bucket_weights, weights)
    current = dict(bucket_weights)
    heap = [(weight, bucket) for bucket, weight in current.items()]
    heapq.heapify(heap)
    placed = array("q")
    for position, weight in enumerate(weights):
        bucket = returning.get(position)
        if bucket is None:
            bucket = _lightest(heap, current)
        current[bucket] += weight
        heapq.heappush(heap, (current[bucket], bucket))
        placed.append(bucket)
    return placed, current


def _lightest(heap: list[tuple[int, int]], current: Mapping[int, int]) -> int:
    """The lightest bucket (ties: lowest id), dropping entries outdated by later placements."""
    while heap:
        weight, bucket = heapq.heappop(heap)
        if current[bucket] == weight:
            return bucket
    raise NoBuckets("There are no buckets yet. Call increase_buckets(amount) first.")
