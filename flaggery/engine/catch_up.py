"""Applying change-log rows: which facts move a snapshot on from its revision, and to what."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from flaggery.engine.model import Change, Fact, ReloadFact, Subject, SubjectFact, SubjectsFact

__all__ = ["ChangeGap", "SubjectUpdates", "facts_after", "latest_subjects", "subject_updates"]


class ChangeGap(Exception):
    """The changes do not continue the current revision: reload the full state instead.

    Not a FlaggeryError: it never reaches a client, the change feed handles it.
    """


def facts_after(revision: int, changes: Sequence[Change]) -> tuple[int, list[Fact]]:
    """The revision reached and the facts to apply, in order, to move on from `revision`.

    Changes at or below the current revision are replays and are skipped; the rest must be
    contiguous from ``revision + 1`` and logged fact by fact (no `ReloadFact`), or `ChangeGap`
    is raised.
    """
    facts: list[Fact] = []
    for change in changes:
        if change.revision <= revision:
            continue
        if change.revision != revision + 1:
            raise ChangeGap(
                f"Expected the change of revision {revision + 1}, got {change.revision}: "
                "reload the full state."
            )
        if any(isinstance(fact, ReloadFact) for fact in change.facts):
            raise ChangeGap(
                f"Revision {change.revision} is too large to patch: reload the full state."
            )
        facts.extend(change.facts)
        revision = change.revision
    return revision, facts


def latest_subjects(facts: Iterable[Fact]) -> dict[int, Subject | None]:
    """Subject id -> its last reported state (None: deleted), for every subject fact, the
    subjects of bulk adds (`SubjectsFact`) included, one by one."""
    latest: dict[int, Subject | None] = {}
    for fact in facts:
        if isinstance(fact, SubjectFact):
            latest[fact.id] = fact.subject
        elif isinstance(fact, SubjectsFact):
            ids, weights, buckets = fact.columns()
            latest.update(zip(ids, map(Subject, weights, buckets), strict=True))
    return latest


class SubjectUpdates(NamedTuple):
    """What the subject facts of a catch-up do: `single` as `latest_subjects` says, and
    `added`, the subjects of bulk adds as parallel ids, weights and buckets (typecode "q"),
    none of them in `single`."""

    single: dict[int, Subject | None]
    added: tuple[array[int], array[int], array[int]]


def subject_updates(facts: Sequence[Fact]) -> SubjectUpdates:
    """The subject facts of `facts` split for applying: bulk adds stay columns (C-level
    passes, O(batch)), unless a single-subject fact names one of their ids (it was removed or
    changed after the bulk add, or before it): then every fact is taken one by one, in order."""
    bulk = [fact for fact in facts if isinstance(fact, SubjectsFact)]
    if not bulk:
        return SubjectUpdates(latest_subjects(facts), (array("q"), array("q"), array("q")))
    single = {fact.id: fact.subject for fact in facts if isinstance(fact, SubjectFact)}
    added = bulk[0].columns()
    for fact in bulk[1:]:
        for column, more in zip(added, fact.columns(), strict=True):
            column.extend(more)
    if single and any(map(single.__contains__, added[0])):
        return SubjectUpdates(latest_subjects(facts), (array("q"), array("q"), array("q")))
    return SubjectUpdates(single, added)
