"""Any targeting key (issue 19): which strings are keys, which are subjects, where the rest hash,
and the one request-time entry point, `Snapshot.evaluate`, against the naive reference."""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import build_snapshot
from flaggery.engine.model import BucketFact, Change, Feature, Group, Rollout, State, Subject
from flaggery.engine.targeting import (
    PythonKeyBucketer,
    bucket_of_key,
    check_targeting_key,
    hash_key,
    jump_consistent_hash,
    key_bucketer,
    key_hasher,
    subject_id_of,
)
from flaggery.engine.units import REQUEST_VIEW_CACHE_SIZE
from flaggery.errors import BucketNotFound, InvalidTargetingKey, SubjectNotFound
from tests.engine.naive import naive_bucket_of_key, naive_key_variants
from tests.engine.strategies import T0, make_state, states, times

KEYS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=256,
) | st.sampled_from(["0", "7", "042", "-3", "+7", "40", "9223372036854775808", "٤٢"])


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 256, " ", "line\nbreak", "6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f", "ü@例.jp", "😀"],
)
def test_any_text_of_1_to_256_characters_without_nul_is_a_key(key: str) -> None:
    assert check_targeting_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "1 to 256 characters; this one has 0"),
        ("x" * 257, "this one has 257"),
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
        (42, "a string, not int"),
        (None, "a string, not NoneType"),
    ],
)
def test_other_keys_are_refused_with_the_reason(key: object, reason: str) -> None:
    with pytest.raises(InvalidTargetingKey, match=reason):
        check_targeting_key(key)


@pytest.mark.parametrize(
    ("key", "subject_id"),
    [
        ("0", 0),
        ("42", 42),
        ("9223372036854775807", 2**63 - 1),
        ("042", None),
        ("00", None),
        ("+42", None),
        ("-42", None),
        (" 42", None),
        ("42 ", None),
        ("4_2", None),
        ("٤٢", None),  # Arabic-Indic digits: str.isdigit() says yes, they are not canonical
        ("9223372036854775808", None),
        ("1" * 30, None),
    ],
)
def test_only_the_canonical_decimal_spelling_names_a_subject(key: str, subject_id: int) -> None:
    assert subject_id_of(key) == subject_id


def test_jump_consistent_hash_agrees_with_the_papers_c_code() -> None:
    # Published answers of the C++ code (as ClickHouse's jumpConsistentHash tests them).
    cases = [(1, 1, 0), (42, 57, 43), (256, 1024, 520), (0xDEAD10CC, 1, 0), (0xDEAD10CC, 666, 361)]
    cases.append((16045690984833335023, 255, 237))
    assert [jump_consistent_hash(h, n) for h, n, _ in cases] == [b for _, _, b in cases]


def test_the_hash_is_keyed_blake2b_of_the_utf8_bytes() -> None:
    salt = bytes(range(16))
    digest = hashlib.blake2b(b"abc", digest_size=8, key=salt).digest()
    assert hash_key(salt, "abc") == int.from_bytes(digest, "big")
    assert hash_key(salt, "abc") != hash_key(bytes(16), "abc")  # another database, another hash


@given(states(), KEYS, times)
def test_every_key_resolves_like_the_naive_reference(state: State, key: str, now: datetime) -> None:
    evaluation = build_snapshot(state, now).evaluate(key)
    assert dict(evaluation.flags) == naive_key_variants(state, key, now)
    if evaluation.hashed:
        assert evaluation.view.bucket == naive_bucket_of_key(state, key)
        assert evaluation.view.groups == ()


@given(states(), times)
def test_a_registered_subjects_canonical_id_is_that_subject(state: State, now: datetime) -> None:
    snapshot = build_snapshot(state, now)
    for subject_id in state.subjects.ids:
        if subject_id < 0:
            continue  # "-3" is not canonical: a key of its own
        evaluation = snapshot.evaluate(str(subject_id))
        assert (evaluation.subject, evaluation.hashed) == (subject_id, False)
        assert evaluation.flags == snapshot.variants(subject_id)
        assert evaluation.view.json == snapshot.flags_json(subject_id)
        assert evaluation.view.etag == snapshot.flags_etag(subject_id)


def _tenant_state() -> State:
    return make_state(
        buckets=[1, 2, 3, 4],
        subjects={42: Subject(1, 3, ("beta",)), 7: Subject(1, 1)},
        features=[Feature("checkout", ("A", "B", "C"), default="A")],
        rollouts=[Rollout("checkout", "B", 0.25, frozenset({3}))],
        groups=[Group("beta", {"search": "on"})],
    )


def test_spellings_other_than_the_canonical_id_are_keys_of_their_own() -> None:
    snapshot = build_snapshot(_tenant_state(), T0)
    for key in ("042", "42 ", "+42", "99"):  # 99 is not registered: hashed too
        evaluation = snapshot.evaluate(key)
        assert evaluation.hashed and evaluation.subject is None and evaluation.view.groups == ()
    with pytest.raises(SubjectNotFound):
        snapshot.variants(99)  # the 0.2.1 API keeps refusing unknown subjects


def test_the_context_may_name_the_subject_to_bucket_by() -> None:
    snapshot = build_snapshot(_tenant_state(), T0)
    for named in (42, "42"):
        evaluation = snapshot.evaluate("visitor-1", {"subject": named})
        assert (evaluation.subject, evaluation.view.bucket) == (42, 3)
        assert evaluation.view.groups == ("beta",)
        assert evaluation.flags == snapshot.variants(42)
    by_tenant = snapshot.evaluate("visitor-1", {"tenant": 42}, subject_attribute="tenant")
    assert by_tenant.subject == 42
    # Not a registered subject (or not one's id): the key decides, as without the attribute.
    not_subjects: tuple[object, ...] = (99, "042", True, 4.2, None)
    for not_subject in not_subjects:
        assert snapshot.evaluate("visitor-1", {"subject": not_subject}) == snapshot.evaluate(
            "visitor-1"
        )
    with pytest.raises(InvalidTargetingKey):
        snapshot.evaluate("", {"subject": 42})  # the key is checked even when unused


def test_without_a_bucket_a_key_gets_the_defaults() -> None:
    state = make_state(features=[Feature("checkout", ("A",), default="A")])
    evaluation = build_snapshot(state, T0).evaluate("anyone")
    assert evaluation.hashed and evaluation.view.bucket is None
    assert dict(evaluation.flags) == {"checkout": "A"}
    assert evaluation.view.json == b'{"flags":{"checkout":"A"}}'


def test_explain_says_hashed_which_bucket_and_why() -> None:
    state = _tenant_state()
    snapshot = build_snapshot(state, T0)
    key = next(k for k in (f"user-{i}" for i in range(100)) if naive_bucket_of_key(state, k) == 3)
    explained = snapshot.explain_key(key)
    assert (explained.hashed, explained.subject_id, explained.bucket) == (True, None, 3)
    assert explained.key_hash == f"{hash_key(state.key_salt, key):016x}"
    assert explained.bucket_count == 4 and explained.groups == []
    assert explained.features["checkout"].source == "rollout"
    subject = snapshot.explain_key("42")
    assert (subject.hashed, subject.subject_id, subject.key_hash) == (False, 42, None)
    assert subject.groups == ["beta"]


def test_views_first_met_at_request_time_are_resolved_into_a_bounded_cache() -> None:
    snapshot = build_snapshot(_tenant_state(), T0)
    assert snapshot.view(1, ("beta",)).flags == {"checkout": "A", "search": "on"}
    assert snapshot.view(1, ("beta",)) is snapshot.view(1, ("beta",))  # cached
    with pytest.raises(BucketNotFound):
        snapshot.view(9)
    first = snapshot.view(2, ("group-0",))
    for n in range(1, REQUEST_VIEW_CACHE_SIZE + 1):
        snapshot.view(2, (f"group-{n}",))
    assert snapshot.view(2, ("group-0",)) is not first  # forgotten when the cache filled up
    assert snapshot.view(2, ("group-0",)) == first


def test_a_new_snapshot_does_not_answer_from_the_old_ones_cache() -> None:
    snapshot = build_snapshot(make_state(buckets=[1]), T0)
    keys = [f"visitor-{n}" for n in range(20)]
    assert {snapshot.evaluate(key).view.bucket for key in keys} == {1}
    grown = snapshot.apply([Change(2, "increase_buckets", (BucketFact(2),))], T0)
    assert {grown.evaluate(key).view.bucket for key in keys} == {1, 2}


@given(
    KEYS,
    st.binary(min_size=16, max_size=16),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=300, unique=True),
)
def test_the_inlined_bucketer_answers_as_hash_then_jump(
    key: str, salt: bytes, buckets: list[int]
) -> None:
    """PythonKeyBucketer (the fallback of the serving path) is bucket_of_key (the documented
    function) with the jump hash inlined; key_bucketer (C or Python) answers alike. The C
    accelerator's own equality tests: tests/engine/test_targeting_accelerator.py."""
    expected = bucket_of_key(key_hasher(salt), buckets, key)
    for bucketer in (PythonKeyBucketer(salt, len(buckets)), key_bucketer(salt, len(buckets))):
        assert (bucketer.hash(key), buckets[bucketer.index(key)]) == expected
