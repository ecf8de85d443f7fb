"""Which views subjects use, so that views nobody uses are dropped.

Every (bucket, groups) combination a subject ever had gets a view, and group churn (joining a
one-off group and leaving it) would otherwise leave one more unused view each time: resolving
the views on every configuration change, and their memory, would grow with history instead of
with the current state. A snapshot counts the subjects on each group view (plain bucket views
always stay: every bucket has one, and new subjects land on them) and renumbers the views
without the unused ones once these outnumber the used ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from flaggery.engine.steps import Steps
from flaggery.engine.subject_index import Entry, SubjectIndex
from flaggery.engine.views import ViewKeys, Views

__all__ = ["MIN_UNUSED_VIEWS", "ViewUsage"]

MIN_UNUSED_VIEWS = 64
"""Unused group views tolerated before renumbering, however few are used: renumbering costs
one C-level pass over the subject index, so it is amortised over at least this many writes."""


class ViewUsage(msgspec.Struct, frozen=True):
    """slot -> the number of subjects on that group view (plain bucket views not counted)."""

    counts: Mapping[int, int]

    def moved(
        self, keys: ViewKeys, moves: Mapping[int, tuple[int | None, Entry | None]]
    ) -> ViewUsage:
        """The usage after subjects moved: id -> (old slot or None, new entry or None)."""
        counts = dict(self.counts)
        for old_slot, entry in moves.values():
            if old_slot is not None and keys[old_slot].groups:
                counts[old_slot] -= 1
                if not counts[old_slot]:
                    del counts[old_slot]
            if entry is not None and keys[entry[0]].groups:
                counts[entry[0]] = counts.get(entry[0], 0) + 1
        return ViewUsage(MappingProxyType(counts))

    def unused(self, keys: ViewKeys, bucket_count: int) -> int:
        """How many group views no subject uses (every bucket has exactly one plain view)."""
        return len(keys) - bucket_count - len(self.counts)

    def wants_compaction(self, keys: ViewKeys, bucket_count: int) -> bool:
        return self.unused(keys, bucket_count) > max(MIN_UNUSED_VIEWS, len(self.counts))

    def compact_in_steps(
        self, keys: ViewKeys, index: SubjectIndex, views: Views | None
    ) -> Steps[tuple[ViewUsage, ViewKeys, SubjectIndex, Views | None]]:
        """Renumber without the unused group views: the usage, keys, index and the `views`
        resolved so far (their slots are a prefix of the keys, and stay one). Yields while
        it renumbers the subject index (flaggery.engine.steps)."""
        kept = [slot for slot, key in enumerate(keys) if not key.groups or slot in self.counts]
        new_slot = {old: new for new, old in enumerate(kept)}
        usage = ViewUsage(MappingProxyType({new_slot[s]: n for s, n in self.counts.items()}))
        new_keys = ViewKeys(keys[slot] for slot in kept)
        if views is not None:
            resolved = [slot for slot in kept if slot < len(views.flags)]
            views = Views(
                keys=new_keys,
                flags=tuple(views.flags[slot] for slot in resolved),
                json=tuple(views.json[slot] for slot in resolved),
                etags=tuple(views.etags[slot] for slot in resolved),
                live_tests=views.live_tests,
                answers=tuple(views.answers[slot] for slot in resolved),
            )
        new_index = yield from index.remapped_in_steps(new_slot)
        return usage, new_keys, new_index, views
