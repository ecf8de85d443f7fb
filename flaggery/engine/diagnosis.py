"""Which record makes a snapshot build fail: for the log, when a build fails."""

from __future__ import annotations

from array import array
from datetime import datetime
from itertools import compress, islice
from operator import not_

import msgspec

from flaggery.engine.model import State, SubjectColumns
from flaggery.engine.snapshot import build_snapshot

__all__ = ["faulty_records"]

MAX_REPORTED_SUBJECTS = 10


def faulty_records(state: State, now: datetime) -> list[str]:
    """Descriptions of the records of `state` that alone make `build_snapshot` fail.

    Subjects are checked against the bucket list in one pass (in C); every configuration
    entity is built alone into a snapshot without subjects. Costs one small build per feature,
    rollout, A/B test and group, so call it only once a build has failed.
    """
    known = set(state.buckets)
    columns = state.subjects
    misplaced = compress(columns.ids, map(not_, map(known.__contains__, columns.buckets)))
    faults = [
        f"subject {subject_id} (its bucket does not exist)"
        for subject_id in islice(misplaced, MAX_REPORTED_SUBJECTS)
    ]
    empty = msgspec.structs.replace(
        state,
        subjects=SubjectColumns(array("q"), array("q"), array("q")),
        memberships={},
        features={},
        rollouts={},
        abtests={},
        groups={},
    )
    kinds = (
        ("feature", "features", state.features),
        ("rollout", "rollouts", state.rollouts),
        ("A/B test", "abtests", state.abtests),
        ("group", "groups", state.groups),
    )
    for kind, field, entities in kinds:
        for name, entity in entities.items():
            try:
                build_snapshot(msgspec.structs.replace(empty, **{field: {name: entity}}), now)
            except Exception as error:
                faults.append(f"{kind} {name!r} ({error!r})")
    return faults
