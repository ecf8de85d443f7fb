"""The remote client's fresh answers: each subject's flags for at most a TTL, dropped when the
change stream says they changed, and never stored after such a drop.

A request in flight while the stream drops its subject (or everything) returns the answer it
got, but does not store it: the server may have answered from the snapshot before the change
(a kill switch), and storing it would serve the old answer for the rest of the TTL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cachetools import TTLCache

__all__ = ["Fetch", "FreshAnswers"]


class Fetch:
    """One request for a subject's flags; `store` keeps its answer unless it was dropped."""

    __slots__ = ("_answers", "dropped", "subject_id")

    def __init__(self, answers: FreshAnswers, subject_id: int) -> None:
        self._answers = answers
        self.subject_id = subject_id
        self.dropped = False
        """Whether the stream dropped the subject's answers since the request started."""

    def store(self, flags: dict[str, str]) -> None:
        if not self.dropped:
            self._answers.cache[self.subject_id] = flags


class FreshAnswers:
    """Bounded (least recently used out when full) and timed (``ttl`` seconds) answers."""

    def __init__(self, size: int, ttl: float) -> None:
        self.cache: TTLCache[int, dict[str, str]] = TTLCache(size, ttl)
        self._fetches: dict[int, set[Fetch]] = {}

    def get(self, subject_id: int) -> dict[str, str] | None:
        return self.cache.get(subject_id)

    @contextlib.contextmanager
    def fetching(self, subject_id: int) -> Iterator[Fetch]:
        """A request for the subject's flags, for the block's duration."""
        fetch = Fetch(self, subject_id)
        fetches = self._fetches.setdefault(subject_id, set())
        fetches.add(fetch)
        try:
            yield fetch
        finally:
            fetches.discard(fetch)
            if not fetches:
                del self._fetches[subject_id]

    def drop(self, subject_id: int) -> None:
        """The subject's answer changed: forget it, and what requests in flight will get."""
        self.cache.pop(subject_id, None)
        for fetch in self._fetches.get(subject_id, ()):
            fetch.dropped = True

    def drop_all(self) -> None:
        """Any answer may have changed (or changes may have been missed)."""
        self.cache.clear()
        for fetches in self._fetches.values():
            for fetch in fetches:
                fetch.dropped = True
