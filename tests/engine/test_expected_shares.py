"""Expected exposure shares come from the allocation (buckets and the subjects in them)."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime

import pytest

from flaggery.engine.expected_shares import bucket_shares, bucket_tallies, subject_shares
from flaggery.engine.model import AbTest, SubjectColumns, TestGroup

_TEST = AbTest(
    name="checkout",
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2027, 1, 1, tzinfo=UTC),
    groups=(
        TestGroup("A", 0.5, {"f": "on"}, frozenset({1, 2})),
        TestGroup("B", 0.5, {"f": "off"}, frozenset({3, 4})),
    ),
)
# Bucket 1 holds three subjects, 2 holds one, 3 holds two, 4 none: nominal 50/50, real 4:2.
_SUBJECTS = SubjectColumns(
    ids=array("q", [1, 2, 3, 4, 5, 6]),
    weights=array("q", [1, 1, 1, 5, 1, 1]),
    buckets=array("q", [1, 1, 1, 2, 3, 3]),
)


def test_subject_shares_count_the_subjects_in_each_groups_buckets() -> None:
    assert subject_shares(_TEST, bucket_tallies(_SUBJECTS, "subjects")) == pytest.approx(
        {"A": 4 / 6, "B": 2 / 6}
    )


def test_weight_shares_sum_the_weights() -> None:
    assert subject_shares(_TEST, bucket_tallies(_SUBJECTS, "weight")) == pytest.approx(
        {"A": 8 / 10, "B": 2 / 10}
    )


def test_bucket_shares_for_hashed_keys() -> None:
    assert bucket_shares(_TEST) == {"A": 0.5, "B": 0.5}


def test_no_subjects_gives_zero_shares() -> None:
    empty = SubjectColumns(ids=array("q"), weights=array("q"), buckets=array("q"))
    assert subject_shares(_TEST, bucket_tallies(empty, "subjects")) == {"A": 0.0, "B": 0.0}
