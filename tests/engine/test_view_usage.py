"""Views nobody uses are dropped (issue 8, item 11): a snapshot's size and the cost of
re-resolving its views depend on the current state, not on the history of group churn."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import build_snapshot, view_usage
from flaggery.engine.model import (
    Change,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    State,
    Subject,
    SubjectFact,
)
from tests.engine.state_patch import apply_changes
from tests.engine.strategies import changes, make_state, minute, states, times
from tests.engine.test_snapshot_apply import assert_same_snapshot

BUCKETS = range(1, 11)


def _churn(cycles: int) -> list[Change]:
    """Subject s joins a one-off group and leaves it again, `cycles` times."""
    log: list[Change] = []
    for cycle in range(cycles):
        subject, group = cycle % 100, f"once-{cycle}"
        bucket = BUCKETS[subject % len(BUCKETS)]
        joined = Subject(1, bucket, ("beta", group))
        log.append(
            Change(
                2 * cycle + 2,
                "join",
                (GroupFact(group, Group(group, {})), SubjectFact(subject, joined)),
            )
        )
        left = Subject(1, bucket, ("beta",))
        log.append(
            Change(2 * cycle + 3, "leave", (SubjectFact(subject, left), GroupFact(group, None)))
        )
    return log


def test_group_churn_leaves_no_views_behind() -> None:
    state = make_state(
        buckets=BUCKETS,
        subjects={i: Subject(1, BUCKETS[i % len(BUCKETS)], ("beta",)) for i in range(100)},
        features=[Feature("f", ("A", "B"), "A")],
        groups=[Group("beta", {"f": "B"})],
    )
    snapshot = build_snapshot(state, minute(0))
    fresh_views = snapshot.view_count
    log = _churn(3000)
    for change in log:
        snapshot = snapshot.apply([change], minute(0))
        assert snapshot.view_count <= fresh_views + 2 * view_usage.MIN_UNUSED_VIEWS
    final = apply_changes(state, log)
    assert_same_snapshot(snapshot, final, minute(0))
    assert build_snapshot(final, minute(0)).view_count == fresh_views
    feature = FeatureFact("f", Feature("f", ("A", "B"), "B"))
    after_config_write = snapshot.apply(
        [Change(final.revision + 1, "config", (feature,))], minute(0)
    )
    assert after_config_write.view_count <= fresh_views + 2 * view_usage.MIN_UNUSED_VIEWS


@given(st.data(), states(), times)
def test_dropping_views_at_every_write_resolves_alike(
    data: st.DataObject, state: State, now: datetime
) -> None:
    """With no tolerance for unused views, every write renumbers: resolution must not change."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(view_usage, "MIN_UNUSED_VIEWS", 0)
        log = data.draw(changes(state))
        snapshot = build_snapshot(state, now)
        for change in log:
            snapshot = snapshot.apply([change], now)
            state = apply_changes(state, [change])
            assert_same_snapshot(snapshot, state, now)
