"""Exposures accepted since the last flush, aggregated in process (pure).

A server accepts exposures into one `ExposureTally` and writes it to the database in one
transaction every flush interval (flaggery.live.exposure_intake, flaggery.store.exposures):
the database row count grows with tests, groups and buckets, never with exposures.

What the tally holds until its flush:

- counters per (test, reported group, population, bucket): repeats, misassigned, early and
  late exposures, known when an exposure is added;
- the units whose first exposure in the test's window may be this one, each once with the
  counters key of its first exposure in the tally: registered subjects by id, hashed
  targeting keys by key. Whether the unit was exposed before (in an earlier flush, by any
  process) is decided by the database when the tally is flushed (`exposed_bits` for
  subjects); a later exposure of the same unit in the same tally is a repeat at once.
"""

from __future__ import annotations

from flaggery.engine.exposures import ClassifiedExposure

__all__ = ["COUNTERS", "CountKey", "ExposureTally"]

COUNTERS = ("first", "repeats", "misassigned", "early", "late")
FIRST, REPEATS, MISASSIGNED, EARLY, LATE = range(len(COUNTERS))
CountKey = tuple[str, str, bool, int]
"""(test, reported group, hashed, bucket): one row of counters."""


class ExposureTally:
    """Exposures added since this tally was made; see the module docstring."""

    __slots__ = ("counters", "exposures", "keys", "subjects")

    def __init__(self) -> None:
        self.counters: dict[CountKey, list[int]] = {}
        """Counters key -> one count per name in COUNTERS (first is filled in by a flush)."""
        self.subjects: dict[str, dict[int, CountKey]] = {}
        """test -> registered subject id -> counters key of its first exposure here."""
        self.keys: dict[str, dict[str, CountKey]] = {}
        """test -> hashed targeting key -> counters key of its first exposure here."""
        self.exposures = 0
        """Exposures added (a bound on the memory held: at most one unit entry each)."""

    def __bool__(self) -> bool:
        return self.exposures > 0

    def add(self, exposure: ClassifiedExposure) -> None:
        key = (exposure.test, exposure.group, exposure.hashed, exposure.bucket)
        counts = self.counters.get(key)
        if counts is None:
            counts = self.counters[key] = [0] * len(COUNTERS)
        self.exposures += 1
        if exposure.window != "live":
            counts[EARLY if exposure.window == "early" else LATE] += 1
            return
        if exposure.assigned != exposure.group:
            counts[MISASSIGNED] += 1
        if exposure.hashed:
            units: dict[int, CountKey] | dict[str, CountKey] = self.keys.setdefault(
                exposure.test, {}
            )
        else:
            units = self.subjects.setdefault(exposure.test, {})
        if exposure.unit in units:
            counts[REPEATS] += 1
        else:
            units[exposure.unit] = key  # type: ignore[index]

    def extend(self, exposures: list[ClassifiedExposure]) -> None:
        for exposure in exposures:
            self.add(exposure)

    def absorb(self, later: ExposureTally) -> None:
        """Add `later`'s exposures, as if they had been added here after this tally's own
        (a flush that failed puts its tally back in front of what arrived meanwhile)."""
        for key, counts in later.counters.items():
            mine = self.counters.setdefault(key, [0] * len(COUNTERS))
            for position, count in enumerate(counts):
                mine[position] += count
        for population, theirs in ((self.subjects, later.subjects), (self.keys, later.keys)):
            for test, units in theirs.items():
                held: dict[object, CountKey] = population.setdefault(test, {})  # type: ignore[assignment]
                for unit, key in units.items():
                    if unit in held:
                        self.counters[key][REPEATS] += 1
                    else:
                        held[unit] = key
        self.exposures += later.exposures

    def settled(
        self, first_subjects: set[tuple[str, int]], first_keys: set[tuple[str, str]]
    ) -> dict[CountKey, list[int]]:
        """The counters once each pending unit's exposure counts as first if (test, unit) is
        in the given sets (the units the flush found exposed for the first time), else as a
        repeat. A copy, in one pass over the units: the tally is unchanged (the flush's
        transaction may still fail)."""
        counters = {key: counts.copy() for key, counts in self.counters.items()}
        for test, subjects in self.subjects.items():
            for subject, key in subjects.items():
                counters[key][FIRST if (test, subject) in first_subjects else REPEATS] += 1
        for test, keys in self.keys.items():
            for unit, key in keys.items():
                counters[key][FIRST if (test, unit) in first_keys else REPEATS] += 1
        return counters
