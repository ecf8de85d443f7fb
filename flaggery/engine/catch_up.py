"""Applying change-log rows: which facts move a snapshot on from its revision, and to what."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from flaggery.engine.model import Change, Fact, ReloadFact, Subject, SubjectFact

__all__ = ["ChangeGap", "facts_after", "latest_subjects"]


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
    """Subject id -> its last reported state (None: deleted), for every subject fact."""
    return {fact.id: fact.subject for fact in facts if isinstance(fact, SubjectFact)}
