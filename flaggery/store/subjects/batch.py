"""The (id, weight) pairs given to `add_subjects`, checked and held as two typed columns.

Ten million pairs checked one at a time in Python cost seconds (two calls and a tuple each); the
columns are built and checked with C-level passes instead (``map``, ``chain``, ``array``, ``min``,
``max``). Only when that finds something wrong does the per-pair check run, so every error says
which pair is wrong in the same words as `check_subject_id` and `check_weight`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import chain, islice
from operator import lt

from flaggery.errors import ValidationError
from flaggery.store.validation import MAX_WEIGHT, check_subject_id, check_weight

__all__ = ["MAX_BULK_SUBJECTS", "SubjectBatch", "check_subject_pairs"]

MAX_BULK_SUBJECTS = 10_000_000


class SubjectBatch:
    """Parallel columns of new subjects in input order: ids and weights, typecode "q"."""

    __slots__ = ("ids", "weights")

    def __init__(self, ids: array[int], weights: array[int]) -> None:
        self.ids = ids
        self.weights = weights

    def __len__(self) -> int:
        return len(self.ids)


def check_subject_pairs(subjects: Iterable[tuple[int, int]]) -> SubjectBatch:
    """The pairs as a `SubjectBatch`, each id a signed 64-bit integer, each weight 1 to 2^31-1.

    Raises ValidationError for a bad id or weight (naming it), a repeated id, or more than
    MAX_BULK_SUBJECTS pairs. Ten million pairs in ascending id order took 6 to 12 s on a busy
    2-core machine (the same list shuffled: 31 s, its tuples scattered in memory, and the
    repeat check needs a set).
    """
    pairs = subjects if isinstance(subjects, Sequence) else list(subjects)
    if len(pairs) > MAX_BULK_SUBJECTS:
        raise ValidationError(f"At most {MAX_BULK_SUBJECTS:,} subjects per call.")
    batch = _fast_columns(pairs) or _checked_columns(pairs)
    if _repeats(batch.ids):
        raise ValidationError("The same subject id appears more than once.")
    return batch


def _fast_columns(pairs: Sequence[tuple[int, int]]) -> SubjectBatch | None:
    """The columns if every pair is two plain ints in range; None if anything is off (the
    per-pair check then says what)."""
    try:
        if set(map(len, pairs)) - {2} or set(map(type, chain.from_iterable(pairs))) - {int}:
            return None
        values = array("q", chain.from_iterable(pairs))
    except (TypeError, OverflowError):
        return None
    weights = values[1::2]
    if weights and not (min(weights) >= 1 and max(weights) <= MAX_WEIGHT):
        return None
    return SubjectBatch(values[0::2], weights)


def _checked_columns(pairs: Sequence[tuple[int, int]]) -> SubjectBatch:
    batch = SubjectBatch(array("q"), array("q"))
    for subject_id, weight in pairs:
        batch.ids.append(check_subject_id(subject_id))
        batch.weights.append(check_weight(weight))
    return batch


def _repeats(ids: array[int]) -> bool:
    """Whether an id appears twice: one C-level pass when the ids ascend (the usual bulk
    load), a set otherwise."""
    if all(map(lt, ids, islice(ids, 1, None))):
        return False
    return len(set(ids)) != len(ids)
