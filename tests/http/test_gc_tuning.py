"""A serving process raises only the young generation's collection threshold."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flaggery.http.gc_tuning import YOUNG_THRESHOLD, tune_for_serving


@pytest.fixture
def restored_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    try:
        yield before
    finally:
        gc.set_threshold(*before)


def test_only_the_young_threshold_is_raised(restored_thresholds: tuple[int, int, int]) -> None:
    tune_for_serving()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *restored_thresholds[1:])
    assert restored_thresholds[0] < YOUNG_THRESHOLD
