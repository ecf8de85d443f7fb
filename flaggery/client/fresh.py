"""The remote client's fresh answers: each unit's flags (a subject by its id, a targeting key by
its text) for at most a TTL, dropped when the change stream says they changed, and never stored
after such a drop.

A request in flight while the stream drops its unit (or everything) returns the answer it
got, but does not store it: the server may have answered from the snapshot before the change
(a kill switch), and storing it would serve the old answer for the rest of the TTL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cachetools import TTLCache

__all__ = ["Fetch", "FreshAnswers", "Unit"]

Unit = int | str | tuple[str, tuple[tuple[str, str], ...]]
"""A subject id, a targeting key, or a key with its context's (sorted) query parameters:
never equal, so one cache holds them all."""


class Fetch:
    """One request for a unit's flags; `store` keeps its answer unless it was dropped."""

    __slots__ = ("_answers", "dropped", "unit")

    def __init__(self, answers: FreshAnswers, unit: Unit) -> None:
        self._answers = answers
        self.unit = unit
        self.dropped = False
        """Whether the stream dropped the unit's answers since the request started."""

    def store(self, flags: dict[str, str]) -> None:
        if not self.dropped:
            self._answers.cache[self.unit] = flags


class FreshAnswers:
    """Bounded (least recently used out when full) and timed (``ttl`` seconds) answers."""

    def __init__(self, size: int, ttl: float) -> None:
        self.cache: TTLCache[Unit, dict[str, str]] = TTLCache(size, ttl)
        self._fetches: dict[Unit, set[Fetch]] = {}

    def get(self, unit: Unit) -> dict[str, str] | None:
        return self.cache.get(unit)

    @contextlib.contextmanager
    def fetching(self, unit: Unit) -> Iterator[Fetch]:
        """A request for the unit's flags, for the block's duration."""
        fetch = Fetch(self, unit)
        fetches = self._fetches.setdefault(unit, set())
        fetches.add(fetch)
        try:
            yield fetch
        finally:
            fetches.discard(fetch)
            if not fetches:
                del self._fetches[unit]

    def drop(self, unit: Unit) -> None:
        """The unit's answer changed: forget it, and what requests in flight will get."""
        self.cache.pop(unit, None)
        for fetch in self._fetches.get(unit, ()):
            fetch.dropped = True

    def drop_all(self) -> None:
        """Any answer may have changed (or changes may have been missed)."""
        self.cache.clear()
        for fetches in self._fetches.values():
            for fetch in fetches:
                fetch.dropped = True
