"""The snapshot's hot reads are functions built with it (flaggery.engine.readers): they answer
as the index does, refuse ids that are not ints, and the key entry point's cache is exact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine import Snapshot, build_snapshot
from flaggery.engine.model import State, Subject
from flaggery.errors import InvalidTargetingKey, SubjectNotFound, ValidationError
from tests.engine.strategies import SUBJECT_IDS, T0, make_state, states


@given(states(), st.lists(SUBJECT_IDS, max_size=20))
def test_reads_answer_as_the_subject_and_its_view_do(state: State, extra: list[int]) -> None:
    """Dense and sparse indexes, holes, ids below and beyond the window: each read agrees
    with `subject` (the index's authority) and the view of its (bucket, groups)."""
    snapshot = build_snapshot(state, T0)
    for subject_id in [*state.subjects.ids, *extra]:
        try:
            subject = snapshot.subject(subject_id)
        except SubjectNotFound:
            reads = (snapshot.variants, snapshot.flags_json, snapshot.flags_etag)
            for read in (*reads, snapshot.flags_answer):
                with pytest.raises(SubjectNotFound):
                    read(subject_id)
            with pytest.raises(SubjectNotFound):
                snapshot.variant(subject_id, "checkout")
            continue
        view = snapshot.view(subject.bucket, tuple(subject.groups))
        assert snapshot.variants(subject_id) == view.flags
        assert snapshot.flags_json(subject_id) == view.json
        assert snapshot.flags_etag(subject_id) == view.etag
        assert snapshot.flags_answer(subject_id) == (view.json, view.etag, subject.bucket)
        for feature in ("checkout", "search", "no such feature"):
            assert snapshot.variant(subject_id, feature) == view.flags.get(feature)


def _snapshot() -> Snapshot:
    return build_snapshot(
        make_state(buckets=[1], subjects={1: Subject(1, 1), 7: Subject(2, 1)}), T0
    )


@pytest.mark.parametrize("wrong", ["7", 7.0, True, False, None, b"7"])
def test_a_subject_id_that_is_not_an_int_is_refused(wrong: object) -> None:
    snapshot = _snapshot()
    reads = (snapshot.variants, snapshot.flags_json, snapshot.flags_etag, snapshot.flags_answer)
    for read in reads:
        with pytest.raises(ValidationError, match="A subject id is an int"):
            read(wrong)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="A subject id is an int"):
        snapshot.variant(wrong, "f")  # type: ignore[arg-type]


def test_a_key_seen_again_is_the_same_evaluation_and_a_bad_key_is_still_refused() -> None:
    snapshot = _snapshot()
    first = snapshot.evaluate("visitor-1")
    assert snapshot.evaluate("visitor-1") is first
    assert snapshot.evaluate("7").subject == 7
    for wrong in ([1], {"a": 1}, "", "x" * 257, 7):
        with pytest.raises(InvalidTargetingKey):
            snapshot.evaluate(wrong)


def test_the_bound_clock_is_read_only_for_a_request_with_a_context() -> None:
    snapshot = _snapshot()
    reads: list[int] = []

    def clock() -> object:
        reads.append(1)
        return T0 + timedelta(days=1)

    evaluate = snapshot.key_evaluator(clock)  # type: ignore[arg-type]
    evaluate("1")
    evaluate("visitor")
    assert reads == []
    evaluate("visitor", {"country": "DE"})
    assert reads == [1]


def test_a_window_from_id_zero_reads_as_any_other() -> None:
    """Ids from 0 take the reads without an offset: holes, ids beyond, negative ids, bools
    and unknown features answer exactly as through the index."""
    subjects = {0: Subject(1, 1), 3: Subject(2, 1), 5: Subject(1, 2)}
    snapshot = build_snapshot(make_state(buckets=[1, 2], subjects=subjects), T0)
    for subject_id in range(-2, 8):
        if subject_id not in subjects:
            for read in (snapshot.variants, snapshot.flags_json, snapshot.flags_answer):
                with pytest.raises(SubjectNotFound):
                    read(subject_id)
            with pytest.raises(SubjectNotFound):
                snapshot.variant(subject_id, "no such feature")
            continue
        subject = snapshot.subject(subject_id)
        view = snapshot.view(subject.bucket, tuple(subject.groups))
        assert snapshot.variants(subject_id) == view.flags
        assert snapshot.flags_answer(subject_id) == (view.json, view.etag, subject.bucket)
        for feature in (*view.flags, "no such feature"):
            assert snapshot.variant(subject_id, feature) == view.flags.get(feature)
    for wrong in (True, False, 0.0):
        with pytest.raises(ValidationError):
            snapshot.variants(wrong)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            snapshot.variant(wrong, "f")  # type: ignore[arg-type]
