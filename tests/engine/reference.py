"""Checking a snapshot against the naive reference resolution."""

from __future__ import annotations

from datetime import datetime

import msgspec

from flaggery.engine import Snapshot, SubjectView
from flaggery.engine.model import State
from tests.engine.naive import naive_variants


def assert_resolves_like_naive(snapshot: Snapshot, state: State, now: datetime) -> None:
    assert snapshot.subject_count == len(state.subjects.ids)
    for position, subject_id in enumerate(state.subjects.ids):
        expected = naive_variants(state, subject_id, now)
        assert dict(snapshot.variants(subject_id)) == expected
        assert msgspec.json.decode(snapshot.flags_json(subject_id)) == {"flags": expected}
        assert snapshot.subject(subject_id) == SubjectView(
            id=subject_id,
            weight=state.subjects.weights[position],
            bucket=state.subjects.buckets[position],
            groups=list(state.memberships.get(subject_id, ())),
        )
