"""The OFREP mapping table over real snapshots, no database: every source of a variant gives
its reason, value and metadata, and the bulk ETag moves only when a subject's answers do."""

from __future__ import annotations

from typing import Any

import msgspec

from flaggery.engine import build_snapshot
from flaggery.engine.model import (
    AbTest,
    Change,
    Feature,
    Group,
    GroupFact,
    Rollout,
    State,
    Subject,
    SubjectFact,
)
from flaggery.engine.model import TestGroup as AbTestGroup
from flaggery.ofrep.answers import SnapshotAnswers
from tests.engine.strategies import make_state, minute

STREAM = "/ofrep/v1/events"


def _state() -> State:
    return make_state(
        buckets=[1, 2],
        subjects={
            1: Subject(weight=1, bucket=1),
            2: Subject(weight=1, bucket=2, groups=("staff",)),
        },
        features=[
            Feature("banner", ("blue", "red"), "blue", {"blue": "#00f"}),
            Feature("checkout", ("off", "on"), "off", {"off": False, "on": True}),
            Feature("kill", ("__DISABLE__", "alive"), "__DISABLE__"),
            Feature("limits", ("low", "high"), "low", {"low": {"max": 1}, "high": {"max": 9}}),
            Feature("nodefault", ("x",)),
            Feature("price", ("a", "b"), "a", {"a": 9.5, "b": 20}),
        ],
        rollouts=[Rollout("checkout", "on", 0.5, frozenset({1}))],
        abtests=[
            AbTest(
                "pricing",
                minute(0),
                minute(60),
                (
                    AbTestGroup("cheap", 0.5, {"price": "a"}, frozenset({1})),
                    AbTestGroup("dear", 0.5, {"price": "b"}, frozenset({2})),
                ),
            )
        ],
        groups=[Group("staff", {"limits": "high"})],
    )


def _single(answers: SnapshotAnswers, subject_id: int, key: str) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(answers.for_subject(subject_id).single[key])
    return decoded


def test_every_source_maps_to_its_reason_value_and_metadata() -> None:
    answers = SnapshotAnswers(build_snapshot(_state(), minute(30)), STREAM)
    known = {"subjectKnown": True, "revision": 1}
    assert _single(answers, 1, "banner") == {
        "key": "banner", "reason": "STATIC", "variant": "blue", "value": "#00f",
        "metadata": {**known, "bucket": 1, "source": "default"},
    }  # fmt: skip
    assert _single(answers, 1, "checkout") == {
        "key": "checkout", "reason": "SPLIT", "variant": "on", "value": True,
        "metadata": {**known, "bucket": 1, "source": "rollout", "proportion": 0.5},
    }  # fmt: skip
    assert _single(answers, 2, "checkout")["reason"] == "DEFAULT"  # targeted, but not here
    assert _single(answers, 2, "checkout")["value"] is False
    assert _single(answers, 2, "price") == {
        "key": "price", "reason": "SPLIT", "variant": "b", "value": 20,
        "metadata": {**known, "bucket": 2, "source": "abtest", "abTest": "pricing",
                     "abTestGroup": "dear"},
    }  # fmt: skip
    assert _single(answers, 2, "limits") == {
        "key": "limits", "reason": "TARGETING_MATCH", "variant": "high", "value": {"max": 9},
        "metadata": {**known, "bucket": 2, "source": "override", "group": "staff"},
    }  # fmt: skip
    assert _single(answers, 1, "kill") == {
        "key": "kill", "reason": "DISABLED", "variant": "__DISABLE__",
        "metadata": {**known, "bucket": 1, "source": "default"},
    }  # fmt: skip
    assert _single(answers, 1, "nodefault") == {
        "key": "nodefault", "reason": "DEFAULT", "variant": "",
        "metadata": {**known, "bucket": 1},
    }  # fmt: skip


def test_unknown_subjects_get_the_defaults_and_say_so() -> None:
    answers = SnapshotAnswers(build_snapshot(_state(), minute(30)), STREAM)
    unknown = {"subjectKnown": False, "revision": 1, "source": "default"}
    assert _single(answers, 99, "checkout") == {
        "key": "checkout", "reason": "DEFAULT", "variant": "off", "value": False,
        "metadata": unknown,
    }  # fmt: skip
    assert _single(answers, 99, "banner")["reason"] == "DEFAULT"  # not STATIC: unregistered
    assert _single(answers, 99, "limits")["variant"] == "low"  # no group, no override
    # A default that is the disabling variant disables for unknown subjects too.
    assert _single(answers, 99, "kill") == {
        "key": "kill", "reason": "DISABLED", "variant": "__DISABLE__", "metadata": unknown,
    }  # fmt: skip


def test_bulk_lists_every_feature_and_the_event_stream() -> None:
    answers = SnapshotAnswers(build_snapshot(_state(), minute(30)), STREAM)
    bulk = msgspec.json.decode(answers.for_subject(2).bulk)
    assert [flag["key"] for flag in bulk["flags"]] == [
        "banner", "checkout", "kill", "limits", "nodefault", "price",
    ]  # fmt: skip
    assert all("revision" not in flag["metadata"] for flag in bulk["flags"])
    assert bulk["eventStreams"] == [
        {"type": "sse", "endpoint": {"requestUri": STREAM}, "inactivityDelaySec": 120}
    ]


def test_bulk_etag_moves_only_when_the_subjects_answers_do() -> None:
    snapshot = build_snapshot(_state(), minute(30))
    before = SnapshotAnswers(snapshot, STREAM)
    # A new subject elsewhere: a new revision, the same answers for subjects 1 and 2.
    added = snapshot.apply([Change(2, "add_subject", (SubjectFact(3, Subject(1, 1)),))], minute(31))
    after = SnapshotAnswers(added, STREAM)
    assert after.for_subject(1).etag == before.for_subject(1).etag
    assert after.for_subject(3).etag == before.for_subject(1).etag  # same view, same answers
    # The staff override changes: subject 2's answers change, subject 1's do not.
    regrouped = added.apply(
        [Change(3, "add_group_override", (GroupFact("staff", Group("staff", {"limits": "low"})),))],
        minute(32),
    )
    changed = SnapshotAnswers(regrouped, STREAM)
    assert changed.for_subject(2).etag != after.for_subject(2).etag
    assert changed.for_subject(1).etag == after.for_subject(1).etag
    # The test ends: subject 1's price now comes from the default, so its tag moves too.
    ended = SnapshotAnswers(regrouped.at(minute(61)), STREAM)
    assert ended.for_subject(1).etag != changed.for_subject(1).etag
