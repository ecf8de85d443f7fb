"""Applying change-log rows to a plain State: the oracle `Snapshot.apply` is tested against.

The engine patches its compact snapshot directly and never needs a patched `State`; this
slower, obvious version exists so tests can compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from flaggery.engine.catch_up import facts_after, latest_subjects
from flaggery.engine.columns import patch_sorted_columns
from flaggery.engine.config import Config
from flaggery.engine.model import Change, Fact, State, SubjectColumns

__all__ = ["apply_changes", "apply_facts"]


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
        key_salt=config.key_salt,
        key_splits=config.key_splits,
    )


def apply_changes(state: State, changes: Sequence[Change]) -> State:
    """A new State at the revision the changes lead to; `ChangeGap` if they skip one."""
    revision, facts = facts_after(state.revision, changes)
    return msgspec.structs.replace(apply_facts(state, facts), revision=revision)
