"""Snapshot.explain: the source of every variant, consistent with the flags it serves."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from hypothesis import given

from flaggery.engine import FeatureExplanation, build_snapshot
from flaggery.engine.model import DISABLE, State
from flaggery.errors import SubjectNotFound
from tests.engine.naive import naive_variants
from tests.engine.strategies import minute, states, times
from tests.engine.test_resolution_order import LAYERED

Why = FeatureExplanation


@pytest.mark.parametrize(
    ("subject_id", "now", "expected"),
    [
        (1, minute(9), {"checkout": Why("A", "default")}),
        # key_share: the rollout's or test group's buckets out of 3 (its share of hashed keys)
        (2, minute(9), {"checkout": Why("B", "rollout", proportion=0.6, key_share=2 / 3)}),
        (
            1,
            minute(15),
            {"checkout": Why("B", "abtest", test="pricing", test_group="control", key_share=2 / 3)},
        ),
        (
            3,
            minute(15),
            {
                "checkout": Why(
                    "C", "abtest", test="pricing", test_group="treatment", key_share=1 / 3
                )
            },
        ),
        (4, minute(15), {"checkout": Why("D", "override", group="beta")}),
        # beta joined after staff: on checkout, which both override, the last joined wins.
        (
            6,
            minute(9),
            {
                "checkout": Why("D", "override", group="beta"),
                "search": Why("new", "override", group="staff"),
            },
        ),
    ],
)
def test_each_source_is_named_with_its_details(
    subject_id: int, now: datetime, expected: dict[str, FeatureExplanation]
) -> None:
    explanation = build_snapshot(LAYERED, now).explain(subject_id)
    assert explanation.features == expected
    assert explanation.subject_id == subject_id
    assert explanation.revision == LAYERED.revision


def test_the_subject_context_is_included() -> None:
    explanation = build_snapshot(LAYERED, minute(9)).explain(6)
    assert (explanation.bucket, explanation.groups) == (3, ["staff", "beta"])


def test_the_json_shape_omits_fields_of_other_sources() -> None:
    explanation = build_snapshot(LAYERED, minute(9)).explain(2)
    assert msgspec.json.decode(msgspec.json.encode(explanation)) == {
        "subject_id": 2,
        "revision": 1,
        "bucket": 2,
        "groups": [],
        "features": {
            "checkout": {"variant": "B", "source": "rollout", "proportion": 0.6, "key_share": 2 / 3}
        },
    }


def test_disabled_says_whether_the_variant_disables() -> None:
    assert Why(DISABLE, "default").disabled
    assert not Why("A", "default").disabled


def test_an_unknown_subject_is_not_found() -> None:
    with pytest.raises(SubjectNotFound):
        build_snapshot(LAYERED, minute(0)).explain(99)


@given(states(), times)
def test_explanations_match_the_flags_and_the_state(state: State, now: datetime) -> None:
    snapshot = build_snapshot(state, now)
    for subject_id in state.subjects.ids:
        explanation = snapshot.explain(subject_id)
        variants = {feature: why.variant for feature, why in explanation.features.items()}
        assert variants == dict(snapshot.variants(subject_id))
        assert variants == dict(naive_variants(state, subject_id, now))
        for feature, why in explanation.features.items():
            _assert_source_holds(state, explanation.bucket, explanation.groups, feature, why, now)


def _assert_source_holds(
    state: State, bucket: int, groups: list[str], feature: str, why: Why, now: datetime
) -> None:
    """The named source really assigns this variant to this subject, checked on the state."""
    if why.source == "default":
        assert state.features[feature].default == why.variant
    elif why.source == "rollout":
        rollout = state.rollouts[feature]
        assert (rollout.variant, rollout.proportion) == (why.variant, why.proportion)
        assert bucket in rollout.buckets
    elif why.source == "abtest":
        assert why.test is not None
        test = state.abtests[why.test]
        group = next(g for g in test.groups if g.name == why.test_group)
        assert test.is_live(now) and bucket in group.buckets
        assert group.variants[feature] == why.variant
    elif why.source == "killed":
        assert state.features[feature].killed and why.variant == "__DISABLE__"
    else:
        assert why.source == "override"
        overriding = [g for g in groups if feature in getattr(state.groups.get(g), "overrides", {})]
        assert overriding[-1] == why.group
        assert state.groups[why.group].overrides[feature] == why.variant
