"""Assignments: answers counted per bucket, credited to the group holding each bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flaggery.engine.assignment_tally import AssignmentTally, served_by_group
from flaggery.engine.model import AbTest, TestGroup

START = datetime(2030, 1, 1, tzinfo=UTC)


def abtest(name: str, holdings: dict[str, tuple[int, ...]]) -> AbTest:
    groups = tuple(TestGroup(g, 0.5, {}, frozenset(b)) for g, b in holdings.items())
    return AbTest(name, START, START + timedelta(days=1), groups)


def test_counts_go_to_the_group_holding_the_bucket_in_each_test() -> None:
    tally = AssignmentTally()
    for bucket in (1, 1, 2, 3, 3, 3, None, 9):
        tally.count(bucket)
    tests = [
        abtest("t", {"a": (1, 2), "b": (3, 4)}),
        abtest("u", {"x": (3,), "y": (9,), "z": (5,)}),
    ]
    assert served_by_group(tally.served, tests) == {
        ("t", "a"): 3,
        ("t", "b"): 3,
        ("u", "x"): 3,
        ("u", "y"): 1,
    }


def test_absorbing_puts_back_counts_taken_out() -> None:
    tally = AssignmentTally()
    tally.count(1)
    taken, tally.served = tally.served, {}
    tally.count(1)
    tally.count(2)
    tally.absorb(taken)
    assert tally.served == {1: 2, 2: 1}
    assert not AssignmentTally()
