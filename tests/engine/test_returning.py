"""Placing new subjects when some come back to a remembered bucket: exactly as one-by-one
insertion in order would place them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine.allocation import lightest_bucket, place_subjects
from flaggery.engine.returning import place_returning_subjects
from flaggery.errors import NoBuckets

nonempty_bucket_weights = st.dictionaries(st.integers(0, 30), st.integers(0, 40), min_size=1)


@given(st.data(), nonempty_bucket_weights, st.lists(st.integers(1, 10), max_size=30))
def test_returning_subjects_are_placed_as_one_by_one_insertion_would(
    data: st.DataObject, weights: dict[int, int], new: list[int]
) -> None:
    buckets = sorted(weights)
    returning = data.draw(
        st.dictionaries(st.integers(0, max(len(new) - 1, 0)), st.sampled_from(buckets))
        if new
        else st.just({})
    )
    current = dict(weights)
    expected = []
    for position, weight in enumerate(new):
        bucket = returning.get(position)
        if bucket is None:
            bucket = lightest_bucket(current)
        current[bucket] += weight
        expected.append(bucket)
    placed, after = place_returning_subjects(weights, new, returning)
    assert (placed.tolist(), after) == (expected, current)


def test_without_returning_subjects_it_is_place_subjects() -> None:
    weights = {1: 3, 2: 0, 3: 1}
    assert place_returning_subjects(weights, [1, 2, 1], {}) == place_subjects(weights, [1, 2, 1])


def test_returning_subjects_need_no_lightest_bucket_but_the_others_do() -> None:
    placed, after = place_returning_subjects({7: 0}, [4, 1], {0: 7})
    assert (placed.tolist(), after) == ([7, 7], {7: 5})
    with pytest.raises(NoBuckets):
        place_returning_subjects({}, [1], {1: 5})
