"""Rule groups and audiences in resolution: a request's view (bucket, rule groups then
explicit groups) resolves like the naive reference, for random states and contexts."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings

from flaggery.engine import build_snapshot
from flaggery.engine.model import State
from flaggery.engine.views import ViewKey, explain_key
from tests.engine.naive import naive_variants
from tests.engine.rules.samples import SAMPLE_CONTEXTS
from tests.engine.strategies import states, times


@settings(max_examples=200, deadline=None)
@given(states(), SAMPLE_CONTEXTS, times)
def test_a_requests_view_resolves_like_the_naive_reference(
    state: State, context: dict[str, object], now: datetime
) -> None:
    config = build_snapshot(state, now).config
    for position, subject_id in enumerate(state.subjects.ids):
        explicit = state.memberships.get(subject_id, ())
        key = ViewKey(
            state.subjects.buckets[position], config.rules.view_groups(explicit, context, now)
        )
        resolved = {feature: why.variant for feature, why in explain_key(config, key, now).items()}
        assert resolved == naive_variants(state, subject_id, now, context)
