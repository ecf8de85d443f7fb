"""Snapshot.place, explain_view and explain_feature: the per-feature path OFREP answers from
agrees with evaluate, feature by feature, for any key and context."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from flaggery.engine import build_snapshot
from flaggery.engine.model import State
from tests.engine.rules.samples import SAMPLE_CONTEXTS
from tests.engine.strategies import T0, states, times

KEYS = st.sampled_from(["0", "7", "12", "40", "visitor-1", "ann@example.com"])


@settings(max_examples=200, deadline=None)
@given(states(), KEYS, SAMPLE_CONTEXTS | st.none(), times)
def test_place_and_explanations_agree_with_evaluate(
    state: State, key: str, context: dict[str, object] | None, now: datetime
) -> None:
    snapshot = build_snapshot(state, T0)
    evaluation = snapshot.evaluate(key, context, now=now)
    placed = snapshot.place(key, context, now=now)
    assert (placed.key, placed.subject, placed.bucket, placed.groups) == (
        evaluation.key,
        evaluation.subject,
        evaluation.bucket,
        evaluation.groups,
    )
    explained = snapshot.explain_view(placed.bucket, placed.groups)
    assert {feature: why.variant for feature, why in explained.items()} == dict(evaluation.flags)
    if not context:  # with one, explain_key also names the constraint set of rule groups
        assert explained == snapshot.explain_key(key).features
    for feature in [*state.features, "no-such-feature"]:
        one = snapshot.explain_feature(placed.bucket, placed.groups, feature)
        assert one == explained.get(feature)
