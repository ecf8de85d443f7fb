"""The snapshot's hot reads as plain functions, built once per snapshot.

`Snapshot.variants`, `variant`, `flags_json` and `evaluate` are these closures, not methods:
every name they read is a closure cell, so a call costs no attribute lookups, and an
`Evaluator` binds the current snapshot's functions as its own when it swaps snapshots (no
layer between an application and the snapshot: issue 25, goal 7). Each refuses a subject id
that is not an int (a bool included) with `ValidationError`, as the Evaluator always did.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple, TypeVar

from flaggery.engine.evaluation import SUBJECT_ATTRIBUTE, Evaluation
from flaggery.engine.subject_index import SubjectIndex
from flaggery.errors import ValidationError

__all__ = ["FlagsAnswer", "Readers", "key_evaluator", "require_subject_id"]

_Value = TypeVar("_Value")

SubjectRead = Callable[[int], Mapping[str, str]]
EvaluateKey = Callable[..., Evaluation]


class Readers(NamedTuple):
    """The per-snapshot read functions (see the module docstring)."""

    variants: Callable[[int], Mapping[str, str]]
    variant: Callable[[int, str], str | None]
    flags_json: Callable[[int], bytes]
    flags_etag: Callable[[int], bytes]
    flags_answer: Callable[[int], FlagsAnswer]

    @staticmethod
    def build(
        index: SubjectIndex,
        flags: tuple[Mapping[str, str], ...],
        json: tuple[bytes, ...],
        etags: tuple[bytes, ...],
        answers: tuple[FlagsAnswer, ...],
    ) -> Readers:
        """The readers of an index over views (`flags`, `json`, `etags`, `answers` by
        slot; the views keep their answers, so a snapshot swap allocates none)."""
        variants = _reader(index, flags)
        return Readers(
            variants,
            _variant_reader(index, flags),
            _reader(index, json),
            _reader(index, etags),
            _reader(index, answers),
        )


class FlagsAnswer(NamedTuple):
    """What the flags route sends for a subject, and the bucket it was served from (counted
    as an assignment): one lookup instead of one per field."""

    json: bytes
    etag: bytes
    bucket: int | None


def _reader(index: SubjectIndex, by_slot: tuple[_Value, ...]) -> Callable[[int], _Value]:
    """id -> ``by_slot[slot of id]``: the dense window first, then the index (which raises
    SubjectNotFound); a non-int id is refused before either."""
    base: int = index.base
    dense: array[int] = index.dense_slots
    slot_of = index.slot

    def read(subject_id: int) -> _Value:
        if type(subject_id) is int:
            offset = subject_id - base
            if offset >= 0:
                try:
                    return by_slot[dense[offset]]
                except IndexError:  # beyond the dense window, or ABSENT (which no view has)
                    pass
            return by_slot[slot_of(subject_id)]
        raise require_subject_id(subject_id)

    if base:
        return read

    def read_from_zero(subject_id: int) -> _Value:
        """`read` for a window starting at id 0, where the id is its own offset: no
        subtraction, no new int (a fifth of a read); anything else goes to `read`."""
        if type(subject_id) is int and subject_id >= 0:
            try:
                return by_slot[dense[subject_id]]
            except IndexError:  # beyond the dense window, or ABSENT (which no view has)
                pass
        return read(subject_id)

    return read_from_zero


def _variant_reader(
    index: SubjectIndex, flags: tuple[Mapping[str, str], ...]
) -> Callable[[int, str], str | None]:
    """id, feature -> ``flags[slot of id].get(feature)``, read as ``columns[feature][slot]``.

    A feature's column (its variant, or None, in every view by slot) is built the first time
    the feature is asked for (O(views), once per snapshot); after that a read is a dict and a
    tuple subscript, bytecodes the interpreter specialises, with no method call (the
    mapping's ``get`` through its read-only proxy was a sixth of the read). Only a feature
    some view names gets a column (the names are gathered on the first miss, one C-level
    pass over the views), so unknown names cannot grow the columns; they read None.
    """
    base: int = index.base
    dense: array[int] = index.dense_slots
    slot_of = index.slot
    columns, column = _feature_columns(flags)

    def variant(subject_id: int, feature: str) -> str | None:
        if type(subject_id) is int:
            offset = subject_id - base
            if offset >= 0:
                try:
                    return columns[feature][dense[offset]]
                except (KeyError, IndexError):  # no column yet; beyond the window, or ABSENT
                    pass
            slot = slot_of(subject_id)  # SubjectNotFound first, whatever the feature
            by_slot = column(feature)
            return None if by_slot is None else by_slot[slot]
        raise require_subject_id(subject_id)

    if base:
        return variant

    def variant_from_zero(subject_id: int, feature: str) -> str | None:
        """`variant` for a window starting at id 0 (see `_reader`'s ``read_from_zero``)."""
        if type(subject_id) is int and subject_id >= 0:
            try:
                return columns[feature][dense[subject_id]]
            except (KeyError, IndexError):
                pass
        return variant(subject_id, feature)

    return variant_from_zero


Column = tuple[str | None, ...]


def _feature_columns(
    flags: tuple[Mapping[str, str], ...],
) -> tuple[dict[str, Column], Callable[[str], Column | None]]:
    """(columns, column): feature -> its variant (or None) in each view by slot, and the
    function that reads or builds a feature's column (None for a feature no view names)."""
    columns: dict[str, Column] = {}
    named: set[str] = set()  # every feature some view names (group overrides included)

    def column(feature: str) -> Column | None:
        built = columns.get(feature)
        if built is None:
            if not named:
                named.update(*flags)
            if feature in named:
                built = columns[feature] = tuple(view.get(feature) for view in flags)
        return built

    return columns, column


def key_evaluator(
    cached: Mapping[str, Evaluation],
    evaluate: Callable[[str, Mapping[str, object] | None, str, datetime | None], Evaluation],
    evaluate_new: Callable[[str], Evaluation],
    clock: Callable[[], datetime] | None,
) -> EvaluateKey:
    """``evaluate(key, context=None, subject_attribute=SUBJECT_ATTRIBUTE)``: a key seen before
    without context is one subscript of `cached` (the finished answer; a dict subscript the
    interpreter specialises, no call: a fifth of the read, against ``cached.get(key)``);
    one not seen (KeyError) is
    `evaluate_new` (which checks, evaluates and caches it); a request with a context is
    `evaluate`, with ``clock()`` as ``now`` (rules read the time only then)."""

    def evaluate_key(
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
        now: datetime | None = None,
    ) -> Evaluation:
        if not context:
            try:
                return cached[key]
            except (KeyError, TypeError):  # not kept, or unhashable (`evaluate_new` says why)
                return evaluate_new(key)
        if now is None and clock is not None:
            now = clock()
        return evaluate(key, context, subject_attribute, now)

    return evaluate_key


def require_subject_id(subject_id: object) -> ValidationError:
    """The error for a subject id that is not an int (or is a bool): a str such as "42" would
    otherwise fail deeper with a bare TypeError."""
    return ValidationError(
        f"A subject id is an int, got {type(subject_id).__name__} {subject_id!r:.40}: "
        "for a targeting key (any string) use evaluate(key)."
    )
