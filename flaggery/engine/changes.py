"""Applying change-log rows: revision bookkeeping and the plain-State version of a patch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from flaggery.engine.columns import patch_sorted_columns
from flaggery.engine.config import Config
from flaggery.engine.model import (
    Change,
    Fact,
    ReloadFact,
    State,
    Subject,
    SubjectColumns,
    SubjectFact,
)

__all__ = ["ChangeGap", "apply_changes", "apply_facts", "facts_after", "latest_subjects"]


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


def apply_facts(state: State, facts: Sequence[Fact]) -> State:
    """A new State with `facts` applied in order; the revision is left as it is."""
    config = Config.of(state).with_facts(facts)
    subjects = latest_subjects(facts)
    rows = {
        subject_id: None if subject is None else (subject.weight, subject.bucket)
        for subject_id, subject in subjects.items()
    }
    columns = state.subjects
    ids, (weights, buckets) = patch_sorted_columns(
        columns.ids, (columns.weights, columns.buckets), rows
    )
    memberships = dict(state.memberships)
    for subject_id, subject in subjects.items():
        if subject is not None and subject.groups:
            memberships[subject_id] = subject.groups
        else:
            memberships.pop(subject_id, None)
    return State(
        revision=state.revision,
        buckets=config.buckets,
        subjects=SubjectColumns(ids=ids, weights=weights, buckets=buckets),
        memberships=memberships,
        features=config.features,
        rollouts=config.rollouts,
        abtests=config.abtests,
        groups=config.groups,
    )


def apply_changes(state: State, changes: Sequence[Change]) -> State:
    """A new State at the revision the changes lead to (see `facts_after` for the rules)."""
    revision, facts = facts_after(state.revision, changes)
    return msgspec.structs.replace(apply_facts(state, facts), revision=revision)
