"""Assignments: the answers a server's flags routes served, per bucket, then per test group.

An exposure is what a client says it showed; an assignment is what the server answered.
Both are counted, apart: a group served far more often than exposed points at the client
(it drops events, or does not show the answer), a mismatch in both at the allocation.

The serving path only adds one to its bucket's count (a dictionary update, about 50 ns: the
flags route's answer carries its bucket, `Snapshot.flags_answer`). At each flush the counts
are credited to the test group holding the bucket in every A/B test the snapshot's answers
applied (`Snapshot.live_tests`: those live when its views were resolved, as the answers were).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flaggery.engine.model import AbTest

__all__ = ["AssignmentTally", "served_by_group"]


class AssignmentTally:
    """bucket -> answers served from it since the last flush (None: there was no bucket)."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served: dict[int | None, int] = {}

    def __bool__(self) -> bool:
        return bool(self.served)

    def count(self, bucket: int | None) -> None:
        """One answer served from `bucket` (OFREP calls this; the flags fast path inlines it)."""
        served = self.served
        served[bucket] = served.get(bucket, 0) + 1

    def absorb(self, later: Mapping[int | None, int]) -> None:
        """Add counts taken out earlier whose flush failed."""
        served = self.served
        for bucket, count in later.items():
            served[bucket] = served.get(bucket, 0) + count


def served_by_group(
    served: Mapping[int | None, int], tests: Iterable[AbTest]
) -> dict[tuple[str, str], int]:
    """(test, group) -> answers served from the buckets the group holds, for each test of
    `tests` (the live ones); a group none of whose buckets served is left out."""
    by_group: dict[tuple[str, str], int] = {}
    for test in tests:
        for group in test.groups:
            total = sum(served.get(bucket, 0) for bucket in group.buckets)
            if total:
                by_group[test.name, group.name] = total
    return by_group
