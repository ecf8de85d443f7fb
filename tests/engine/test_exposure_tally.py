"""The in-process exposure tally: counters known at once, first exposures settled later."""

from __future__ import annotations

from flaggery.engine.exposure_tally import ExposureTally
from flaggery.engine.exposures import ClassifiedExposure, Window


def seen(
    unit: int | str, group: str = "a", assigned: str = "a", window: Window = "live", bucket: int = 1
) -> ClassifiedExposure:
    return ClassifiedExposure("t", group, assigned, unit, isinstance(unit, str), bucket, window)


def counters(tally: ExposureTally) -> dict[tuple[str, str, bool, int], list[int]]:
    return {key: list(counts) for key, counts in tally.counters.items()}


def test_repeats_within_a_tally_misassigned_and_the_window_are_counted_at_once() -> None:
    tally = ExposureTally()
    tally.extend([seen(1), seen(1), seen(2, "b"), seen("k"), seen(3, window="early")])
    tally.add(seen(4, window="late"))
    assert tally.exposures == 6
    assert counters(tally) == {
        ("t", "a", False, 1): [0, 1, 0, 1, 1],  # first, repeats, misassigned, early, late
        ("t", "b", False, 1): [0, 0, 1, 0, 0],
        ("t", "a", True, 1): [0, 0, 0, 0, 0],
    }
    assert tally.subjects == {"t": {1: ("t", "a", False, 1), 2: ("t", "b", False, 1)}}
    assert tally.keys == {"t": {"k": ("t", "a", True, 1)}}


def test_settling_counts_each_pending_unit_once_first_or_repeat() -> None:
    tally = ExposureTally()
    tally.extend([seen(1), seen(2), seen("k"), seen("j")])
    before = counters(tally)
    settled = tally.settled({("t", 1)}, {("t", "j")})
    assert {key: counts for key, counts in settled.items() if any(counts)} == {
        ("t", "a", False, 1): [1, 1, 0, 0, 0],
        ("t", "a", True, 1): [1, 1, 0, 0, 0],
    }
    assert counters(tally) == before  # the flush may still fail: the tally stays as it was


def test_absorbing_a_later_tally_is_adding_its_exposures_after() -> None:
    earlier, later, whole = ExposureTally(), ExposureTally(), ExposureTally()
    first = [seen(1), seen(2, "b"), seen("k")]
    second = [seen(2, "b"), seen(3), seen("k", bucket=2), seen(5, window="late")]
    earlier.extend(first)
    later.extend(second)
    whole.extend(first + second)
    earlier.absorb(later)
    assert counters(earlier) == counters(whole)
    assert (earlier.subjects, earlier.keys, earlier.exposures) == (
        whole.subjects,
        whole.keys,
        whole.exposures,
    )
