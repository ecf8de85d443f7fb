"""What split of exposures an A/B test's real allocation implies, per test group.

flaggery knows exactly which buckets each test group holds and which registered subjects are in
them, so the expected split is the allocation's, not the nominal proportions: with uneven
buckets a nominal 50/50 test may hold 52% of the subjects in one group, and comparing exposures
to 50/50 would raise a false alarm (Mozilla experimenter#16011).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Literal

from flaggery.engine.model import AbTest, SubjectColumns

__all__ = ["ShareBasis", "bucket_shares", "bucket_tallies", "subject_shares"]

ShareBasis = Literal["subjects", "weight"]
"""How registered subjects count towards a group's share: one each, or by their weight (when
weights mean traffic)."""


def bucket_tallies(subjects: SubjectColumns, basis: ShareBasis) -> Counter[int]:
    """bucket id -> number of registered subjects in it (``"subjects"``) or their total weight
    (``"weight"``)."""
    if basis == "subjects":
        return Counter(subjects.buckets)
    tallies: Counter[int] = Counter()
    for bucket, weight in zip(subjects.buckets, subjects.weights, strict=True):
        tallies[bucket] += weight
    return tallies


def subject_shares(test: AbTest, tallies: Mapping[int, int]) -> dict[str, float]:
    """test group name -> its fraction of the test's registered subjects (or weight), from
    ``tallies`` (``bucket_tallies``), in the test's group order. Every share is 0.0 when the
    test's buckets hold no subject (nothing can be compared)."""
    held = {
        group.name: sum(tallies.get(bucket, 0) for bucket in group.buckets) for group in test.groups
    }
    total = sum(held.values())
    return {name: (count / total if total else 0.0) for name, count in held.items()}


def bucket_shares(test: AbTest) -> dict[str, float]:
    """test group name -> its fraction of the test's buckets: the expected split of hashed
    targeting keys (jump consistent hashing spreads keys evenly over buckets)."""
    total = sum(len(group.buckets) for group in test.groups)
    return {group.name: (len(group.buckets) / total if total else 0.0) for group in test.groups}
