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
from flaggery.ofrep.answers import Answers, SnapshotAnswers
from tests.engine.naive import naive_bucket_of_key
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


def _for(answers: SnapshotAnswers, targeting_key: int | str) -> Answers:
    return answers.for_unit(answers.snapshot.evaluate(str(targeting_key)))


def _single(answers: SnapshotAnswers, targeting_key: int | str, key: str) -> dict[str, Any]:
    body = _for(answers, targeting_key).single(key)
    assert body is not None
    decoded: dict[str, Any] = msgspec.json.decode(body)
    return decoded


def test_every_source_maps_to_its_reason_value_and_metadata() -> None:
    answers = SnapshotAnswers(build_snapshot(_state(), minute(30)), STREAM)
    known = {"subjectKnown": True, "keyHashed": False, "revision": 1}
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


def _key_in_bucket(state: State, bucket: int) -> str:
    keys = (f"visitor-{n}" for n in range(99))
    return next(key for key in keys if naive_bucket_of_key(state, key) == bucket)


def test_hashed_keys_get_their_buckets_answers_and_say_so() -> None:
    state = _state()
    answers = SnapshotAnswers(build_snapshot(state, minute(30)), STREAM)
    in_1, in_2 = _key_in_bucket(state, 1), _key_in_bucket(state, 2)
    hashed = {"subjectKnown": False, "keyHashed": True, "revision": 1}
    assert _single(answers, in_1, "checkout") == {
        "key": "checkout", "reason": "SPLIT", "variant": "on", "value": True,
        "metadata": {**hashed, "bucket": 1, "source": "rollout", "proportion": 0.5},
    }  # fmt: skip
    assert _single(answers, in_2, "checkout")["reason"] == "DEFAULT"  # targeted, not here
    assert _single(answers, in_1, "banner")["reason"] == "STATIC"  # as for a subject in 1
    assert _single(answers, in_2, "price")["variant"] == "b"
    assert _single(answers, in_2, "limits")["variant"] == "low"  # no group, no override
    assert _single(answers, in_1, "kill") == {
        "key": "kill", "reason": "DISABLED", "variant": "__DISABLE__",
        "metadata": {**hashed, "bucket": 1, "source": "default"},
    }  # fmt: skip
    # A subject's answers and a hashed key's in the same view differ only in what they say.
    subject = _single(answers, 1, "checkout")
    assert subject["metadata"] == {**_single(answers, in_1, "checkout")["metadata"],
                                   "subjectKnown": True, "keyHashed": False}  # fmt: skip


def test_without_a_bucket_every_key_gets_the_defaults() -> None:
    state = make_state(features=[Feature("banner", ("blue",), "blue")])
    answers = SnapshotAnswers(build_snapshot(state, minute(30)), STREAM)
    assert _single(answers, "anyone", "banner") == {
        "key": "banner", "reason": "DEFAULT", "variant": "blue", "value": "blue",
        "metadata": {"subjectKnown": False, "keyHashed": True, "revision": 1, "source": "default"},
    }  # fmt: skip


def test_bulk_lists_every_feature_and_the_event_stream() -> None:
    answers = SnapshotAnswers(build_snapshot(_state(), minute(30)), STREAM)
    bulk = msgspec.json.decode(_for(answers, 2).bulk)
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
    assert _for(after, 1).etag == _for(before, 1).etag
    assert _for(after, 3).etag == _for(before, 1).etag  # same view, same answers
    # The staff override changes: subject 2's answers change, subject 1's do not.
    regrouped = added.apply(
        [Change(3, "add_group_override", (GroupFact("staff", Group("staff", {"limits": "low"})),))],
        minute(32),
    )
    changed = SnapshotAnswers(regrouped, STREAM)
    assert _for(changed, 2).etag != _for(after, 2).etag
    assert _for(changed, 1).etag == _for(after, 1).etag
    # The test ends: subject 1's price now comes from the default, so its tag moves too.
    ended = SnapshotAnswers(regrouped.at(minute(61)), STREAM)
    assert _for(ended, 1).etag != _for(changed, 1).etag
