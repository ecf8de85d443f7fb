"""The bulk-add pairs checked as columns: the C-level fast path accepts exactly what the
per-pair checks accept, and every refusal names the pair in the same words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.errors import ValidationError
from flaggery.store.subjects import batch as subject_batch
from flaggery.store.subjects.batch import check_subject_pairs
from flaggery.store.validation import MAX_SUBJECT_ID, MAX_WEIGHT, MIN_SUBJECT_ID

ids = st.integers(MIN_SUBJECT_ID, MAX_SUBJECT_ID)
weights = st.integers(1, MAX_WEIGHT)


@given(st.lists(st.tuples(ids, weights), unique_by=lambda pair: pair[0], max_size=40))
def test_good_pairs_become_columns_in_input_order(pairs: list[tuple[int, int]]) -> None:
    batch = check_subject_pairs(pairs)
    assert (batch.ids.tolist(), batch.weights.tolist()) == (
        [i for i, _ in pairs],
        [w for _, w in pairs],
    )
    assert (batch.ids.typecode, batch.weights.typecode, len(batch)) == ("q", "q", len(pairs))


def test_any_iterable_is_read_once() -> None:
    batch = check_subject_pairs((i, i % 3 + 1) for i in range(5, 0, -1))
    assert batch.ids.tolist() == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(1, 1), (True, 1)], "A subject id must be an integer, got True"),
        ([(1, 1), (1.0, 1)], "A subject id must be an integer, got 1.0"),
        ([(2**63, 1)], "does not fit in a signed 64-bit integer"),
        ([(MIN_SUBJECT_ID - 1, 1)], "does not fit in a signed 64-bit integer"),
        ([(1, 0)], "A weight must be an integer from 1 to 2147483647, got 0"),
        ([(1, 2**31)], "got 2147483648"),
        ([(1, False)], "got False"),
        ([(1, "2")], "got '2'"),
        ([(3, 1), (1, 1), (3, 2)], "The same subject id appears more than once"),
        ([(1, 1), (2, 1), (2, 1)], "The same subject id appears more than once"),
    ],
)
def test_bad_pairs_are_named(pairs: list[tuple[Any, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_subject_pairs(pairs)


def test_pairs_of_another_length_fail_as_unpacking_does() -> None:
    bad: Iterable[Any] = [(1, 1), (2, 1, 3)]
    with pytest.raises(ValueError, match="too many values"):
        check_subject_pairs(bad)


def test_the_size_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subject_batch, "MAX_BULK_SUBJECTS", 3)
    check_subject_pairs([(1, 1), (2, 1), (3, 1)])
    with pytest.raises(ValidationError, match="At most 3 subjects"):
        check_subject_pairs([(1, 1), (2, 1), (3, 1), (4, 1)])
