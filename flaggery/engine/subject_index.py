"""A compact, immutable map from subject id to (slot, weight).

Subjects dominate memory, so the index never holds a Python object per subject. It picks one
of two layouts from the ids it holds:

- dense, when the ids span a range not much wider than their count: an array of slots
  (``'H'``, 2 bytes, while the views number fewer than 65,535; else ``'I'``) and an
  ``array('q')`` of weights indexed by ``id - base`` (10 or 12 bytes per id in the range; the
  typecode's largest value, `ABSENT` for ``'I'``, marks holes). Two bytes a slot keep ten
  million subjects' slots in 20 MB, within this machine's last-level cache, where four bytes
  (40 MB) were not: the lookup is one cache line, more often already cached. A slot column
  of 4 MiB or more is backed by transparent huge pages where Linux offers them
  (flaggery.engine.huge_pages): ten pages of 2 MiB instead of 5,000 of 4 KiB, so a lookup
  also finds its address translation cached. A window whose lowest id is small (ids from 1,
  as a database numbers them) starts at id 0, so a read uses the id itself as the offset;
- sparse, otherwise: sorted ``array('q')`` ids with parallel slots and weights, searched by
  bisection (20 bytes per subject).

A slot is an index into the snapshot's tuple of resolved views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from itertools import compress
from typing import Literal

from flaggery.engine.columns import patch_sorted_columns
from flaggery.engine.huge_pages import prefer_huge_pages
from flaggery.engine.steps import STEP_SLOTS, Steps, finish
from flaggery.errors import SubjectNotFound

__all__ = ["ABSENT", "NARROW_SLOTS", "Columns", "Entry", "SubjectIndex", "absent_of", "slot_column"]

ABSENT = 0xFFFFFFFF
"""The slot of an id an ``'I'`` dense layout does not hold (``'H'``: 0xFFFF): no view has it."""

NARROW_SLOTS = 0xFFFF
"""Slots below this fit the narrow (``'H'``) slot column; 0xFFFF marks its holes."""

# Beyond every signed 64-bit id: a sparse index's empty dense window starts here, so
# `id - base` is always negative and the fast path falls through to `slot()`.
_BEYOND_EVERY_ID = 1 << 64

# A dense layout may be at most this much wider than its count (plus a fixed allowance for
# small indexes): at twice the count it costs 24 bytes per subject, a little more than sparse,
# and it buys a lookup without bisection.
_DENSE_SPREAD = 2
_DENSE_ALLOWANCE = 1024

# A dense window whose lowest id is at most 1/64 of its count starts at id 0 instead (holes
# below): a read then uses the id itself as the offset.
_ZERO_BASE_RATIO = 64

Entry = tuple[int, int]
"""(slot, weight) of one subject."""

Columns = tuple["array[int]", "array[int]", "array[int]"]


class SubjectIndex(ABC):
    """Subject id -> (slot, weight), immutable.

    ``base`` and ``dense_slots`` are the dense window, public for the snapshot's hot path:
    ``dense_slots[id - base]`` is the slot when ``id - base`` is a valid non-negative index
    holding anything but `ABSENT`; in every other case ask `slot`, the authority, which also
    raises `SubjectNotFound`.
    """

    __slots__ = ("base", "dense_slots")

    base: int
    dense_slots: array[int]

    @staticmethod
    def build(ids: array[int], slots: array[int], weights: array[int]) -> SubjectIndex:
        """Index parallel columns sorted by id (typecodes "q", "H" or "I", "q").

        The index takes ownership: the arrays may be kept as they are, so do not mutate them.
        """
        if ids and _fits_dense(ids[-1] - ids[0] + 1, len(ids)):
            index = _DenseIndex.from_columns(ids, slots, weights)
            # A build is seconds for millions of subjects: the huge pages are worth having now.
            prefer_huge_pages(index.dense_slots, now=True)
            return index
        return _SparseIndex(ids, slots, weights)

    @property
    @abstractmethod
    def layout(self) -> Literal["dense", "sparse"]:
        """Which layout this index uses."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of subjects."""

    @abstractmethod
    def entry(self, subject_id: int) -> Entry:
        """(slot, weight) of a subject; `SubjectNotFound` if it is not indexed."""

    @abstractmethod
    def columns(self) -> Columns:
        """Every subject as sorted ids with parallel slots and weights; they may be the
        index's own arrays, so do not mutate them."""

    def slot(self, subject_id: int) -> int:
        """The slot of a subject; `SubjectNotFound` if it is not indexed."""
        return self.entry(subject_id)[0]

    def remapped(self, slots: Mapping[int, int]) -> SubjectIndex:
        """A new index with every slot replaced by ``slots[slot]`` (which must cover them all).

        C-level passes over the slots (``map`` over a dict lookup), no Python loop.
        """
        return finish(self.remapped_in_steps(slots))

    @abstractmethod
    def remapped_in_steps(self, slots: Mapping[int, int]) -> Steps[SubjectIndex]:
        """`remapped`, yielding after every `STEP_SLOTS` slots (flaggery.engine.steps)."""

    def with_room_for(self, view_count: int) -> SubjectIndex:
        """This index, or one whose slot column's hole marker is beyond `view_count` views (a
        narrow column is widened once the views reach 65,535, even if no subject's slot does:
        a hole must never read as a view)."""
        return self

    def patched(self, updates: Mapping[int, Entry | None]) -> SubjectIndex:
        """A new index with `updates` applied: id -> new entry, or None to delete it."""
        return self._patched(updates) if updates else self

    def with_added(self, ids: array[int], slots: array[int], weights: array[int]) -> SubjectIndex:
        """A new index with these subjects (parallel columns, ids not indexed yet) added."""
        if not ids:
            return self
        return self._patched(dict(zip(ids, zip(slots, weights, strict=True), strict=True)))

    def _patched(self, updates: Mapping[int, Entry | None]) -> SubjectIndex:
        """Patch the sorted columns and choose the layout afresh from the resulting ids."""
        ids, slots, weights = self.columns()
        slots = _fitting(slots, _largest_slot(updates))
        new_ids, (new_slots, new_weights) = patch_sorted_columns(ids, (slots, weights), updates)
        return SubjectIndex.build(new_ids, new_slots, new_weights)


class _DenseIndex(SubjectIndex):
    __slots__ = ("_absent", "_count", "_weights")

    def __init__(self, base: int, slots: array[int], weights: array[int], count: int) -> None:
        self.base = base
        self.dense_slots = slots
        prefer_huge_pages(slots, now=False)  # the serving path's swaps: no copy, a hint
        self._absent = absent_of(slots)
        self._weights = weights
        self._count = count

    @classmethod
    def from_columns(cls, ids: array[int], slots: array[int], weights: array[int]) -> _DenseIndex:
        first = ids[0]
        # Ids from a small positive first id (a database's from 1) get a window from 0, so
        # the reads skip a subtraction (flaggery.engine.readers), for at most 1/64 more bytes.
        base = 0 if first > 0 and first * _ZERO_BASE_RATIO <= len(ids) else first
        if ids[-1] - first + 1 == len(ids):  # contiguous
            if base == first:
                return cls(base, slots, weights, len(ids))  # the columns are the layout
            length = ids[-1] - base + 1
            return cls(
                base,
                _widened(slots, first, length, absent_of(slots)),
                _widened(weights, first, length, 0),
                len(ids),
            )
        dense_slots = array(slots.typecode, [absent_of(slots)]) * (ids[-1] - base + 1)
        dense_weights = array("q", [0]) * len(dense_slots)
        for subject_id, slot, weight in zip(ids, slots, weights, strict=True):
            dense_slots[subject_id - base] = slot
            dense_weights[subject_id - base] = weight
        return cls(base, dense_slots, dense_weights, len(ids))

    @property
    def layout(self) -> Literal["dense", "sparse"]:
        return "dense"

    def with_room_for(self, view_count: int) -> SubjectIndex:
        if view_count < self._absent:
            return self
        return _DenseIndex(
            self.base, _fitting(self.dense_slots, view_count), self._weights, self._count
        )

    def __len__(self) -> int:
        return self._count

    def entry(self, subject_id: int) -> Entry:
        offset = subject_id - self.base
        if 0 <= offset < len(self.dense_slots):
            slot = self.dense_slots[offset]
            if slot != self._absent:
                return slot, self._weights[offset]
        raise _not_found(subject_id)

    def columns(self) -> Columns:
        slots = self.dense_slots
        ids = range(self.base, self.base + len(slots))
        if self._count == len(slots):  # no hole: the layout is the columns (shared, immutable)
            return array("q", ids), slots, self._weights
        holes = len(slots) - self._count
        if slots[:holes] == array(slots.typecode, [self._absent]) * holes:
            # Every hole leads (a window from 0 over ids from 1): the rest is whole, so the
            # columns are slices of the layout (C-level copies).
            return array("q", ids[holes:]), slots[holes:], self._weights[holes:]
        # compress/filter/map iterate in C: no Python-level loop over the whole range.
        held = self._absent.__ne__
        return (
            array("q", compress(ids, map(held, slots))),
            array(slots.typecode, filter(held, slots)),
            array("q", compress(self._weights, map(held, slots))),
        )

    def _patched(self, updates: Mapping[int, Entry | None]) -> SubjectIndex:
        """Copy the window (a C-level copy), widen it for new ids, and write the updates.

        Falls back to the generic path when the result would be too sparse for this layout.
        """
        held = {subject_id for subject_id in updates if self._holds(subject_id)}
        inserted = [sid for sid, entry in updates.items() if entry is not None and sid not in held]
        deleted = sum(1 for subject_id in held if updates[subject_id] is None)
        count = self._count + len(inserted) - deleted
        low = min([self.base, *inserted])
        high = max([self.base + len(self.dense_slots) - 1, *inserted])
        if not _fits_dense(high - low + 1, count):
            return super()._patched(updates)
        window = _fitting(self.dense_slots, _largest_slot(updates))
        absent = absent_of(window)
        writes = {
            subject_id - low: entry or (absent, 0)
            for subject_id, entry in updates.items()
            if entry is not None or subject_id in held
        }
        # A column no update changes is shared, not copied: a weight change copies only the
        # weights (8 bytes a subject), a join or leave only the slots (2), not both.
        in_place = low == self.base and high - low + 1 == len(window)
        slots, weights = window, self._weights
        if not (in_place and window is self.dense_slots and _unchanged(window, writes, 0)):
            slots = _widened(window, self.base - low, high - low + 1, absent)
            for offset, (slot, _) in writes.items():
                slots[offset] = slot
        if not (in_place and _unchanged(weights, writes, 1)):
            weights = _widened(weights, self.base - low, high - low + 1, 0)
            for offset, entry in writes.items():
                weights[offset] = entry[1]
        return _DenseIndex(low, slots, weights, count)

    def with_added(self, ids: array[int], slots: array[int], weights: array[int]) -> SubjectIndex:
        """An import batch (ids ascending by one, beyond the window) is appended: two C-level
        copies of the window and the batch's columns, no Python loop over either."""
        end = self.base + len(self.dense_slots)
        if not (
            ids
            and ids[0] >= end
            # The span test first: it keeps the range below within int64 (2**63 - 1 is an id).
            and ids[-1] - ids[0] + 1 == len(ids)
            and ids == array("q", range(ids[0], ids[0] + len(ids)))
            and _fits_dense(ids[-1] - self.base + 1, self._count + len(ids))
        ):
            return super().with_added(ids, slots, weights)
        window = _fitting(self.dense_slots, max(slots))
        gap = ids[0] - end  # ids never added: holes
        new_slots = _widened(window, 0, len(window) + gap, absent_of(window))
        new_slots += slots if slots.typecode == window.typecode else array(window.typecode, slots)
        new_weights = _widened(self._weights, 0, len(window) + gap, 0)
        new_weights += weights
        return _DenseIndex(self.base, new_slots, new_weights, self._count + len(ids))

    def remapped_in_steps(self, slots: Mapping[int, int]) -> Steps[SubjectIndex]:
        column = _fitting(self.dense_slots, max(slots.values(), default=0))
        absent = absent_of(column)
        remapped = yield from _remapped_column(column, {**slots, absent: absent})
        return _DenseIndex(self.base, remapped, self._weights, self._count)

    def _holds(self, subject_id: int) -> bool:
        offset = subject_id - self.base
        return 0 <= offset < len(self.dense_slots) and self.dense_slots[offset] != self._absent


class _SparseIndex(SubjectIndex):
    __slots__ = ("_ids", "_slots", "_weights")

    def __init__(self, ids: array[int], slots: array[int], weights: array[int]) -> None:
        self.base = _BEYOND_EVERY_ID
        self.dense_slots = array("I")
        self._ids = ids
        self._slots = slots
        self._weights = weights

    @property
    def layout(self) -> Literal["dense", "sparse"]:
        return "sparse"

    def __len__(self) -> int:
        return len(self._ids)

    def entry(self, subject_id: int) -> Entry:
        position = bisect_left(self._ids, subject_id)
        if position < len(self._ids) and self._ids[position] == subject_id:
            return self._slots[position], self._weights[position]
        raise _not_found(subject_id)

    def columns(self) -> Columns:
        return self._ids, self._slots, self._weights

    def remapped_in_steps(self, slots: Mapping[int, int]) -> Steps[SubjectIndex]:
        column = _fitting(self._slots, max(slots.values(), default=0))
        remapped = yield from _remapped_column(column, slots)
        return _SparseIndex(self._ids, remapped, self._weights)


def _remapped_column(column: array[int], lookup: Mapping[int, int]) -> Steps[array[int]]:
    """``lookup[slot]`` for every slot of ``column``, `STEP_SLOTS` per step."""
    remapped = array(column.typecode)
    for first in range(0, len(column), STEP_SLOTS):
        if first:
            yield
        remapped.extend(map(lookup.__getitem__, column[first : first + STEP_SLOTS]))
    return remapped


def absent_of(slots: array[int]) -> int:
    """The hole marker of a slot column: its typecode's largest value."""
    return ABSENT if slots.typecode == "I" else (1 << (8 * slots.itemsize)) - 1


def slot_column(view_count: int) -> array[int]:
    """An empty slot column for slots below `view_count`: narrow (``'H'``) while they fit."""
    return array("H" if view_count < NARROW_SLOTS else "I")


def _largest_slot(updates: Mapping[int, Entry | None]) -> int:
    return max((entry[0] for entry in updates.values() if entry is not None), default=0)


def _fitting(slots: array[int], largest: int) -> array[int]:
    """`slots`, or a wide (``'I'``) copy when `largest` does not fit below its hole marker
    (the views outgrew 65,534: rare, so a Python-level copy is good enough)."""
    narrow_absent = absent_of(slots)
    if largest < narrow_absent:
        return slots
    return array("I", (ABSENT if slot == narrow_absent else slot for slot in slots))


def _unchanged(column: array[int], writes: Mapping[int, Entry], field: int) -> bool:
    """Whether writing ``entry[field]`` at each offset of `writes` leaves `column` as it is."""
    return all(column[offset] == entry[field] for offset, entry in writes.items())


def _fits_dense(span: int, count: int) -> bool:
    return span <= _DENSE_SPREAD * count + _DENSE_ALLOWANCE


def _widened(column: array[int], before: int, length: int, filler: int) -> array[int]:
    """A copy of `column` shifted right by `before` and padded with `filler` to `length`."""
    widened = array(column.typecode, [filler]) * before
    widened += column  # in place: one copy of the column, not two
    widened += array(column.typecode, [filler]) * (length - len(widened))
    return widened


def _not_found(subject_id: int) -> SubjectNotFound:
    return SubjectNotFound(f"Subject {subject_id} does not exist.")
