"""OFREP answers for one snapshot, encoded once per view and reused by every request.

Subjects in the same bucket and groups share a view (`Snapshot.view_slot`), so they share
answers: the first request for a view explains it (`Snapshot.explain`, one pass over the
configuration) and encodes every feature's single-flag body, the bulk body and its ETag;
later requests for any subject of that view are a dict lookup. Answers are built on first use
rather than with the snapshot, because a snapshot is rebuilt on every write and most of its
views may never be asked for over OFREP before the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from flaggery.engine import Snapshot
from flaggery.engine.views import entity_tag
from flaggery.errors import SubjectNotFound
from flaggery.flag_evaluation import (
    UNKNOWN_SLOT,
    as_stale,
    evaluate_view,
    targeted_features,
    with_revision,
)
from flaggery.ofrep.wire import BulkEvaluation, EventStream, EventStreamEndpoint, encode

__all__ = ["Answers", "SnapshotAnswers"]


@dataclass(frozen=True, slots=True)
class Answers:
    """Everything OFREP sends for the subjects of one view."""

    single: dict[str, bytes]
    """feature -> the encoded single-flag evaluation (with ``revision`` in its metadata)."""
    bulk: bytes
    """The encoded bulk evaluation: every feature, and the event stream."""
    etag: bytes
    """Quoted ETag of `bulk`. Bulk metadata has no revision, so the tag changes only when
    something in the subject's answers does: a write elsewhere still gets a 304."""


class SnapshotAnswers:
    """The answers of one snapshot, per view, and whether it is ``stale`` (then every reason
    is STALE: flaggery.flag_evaluation.as_stale). Not thread-safe; one per event loop."""

    __slots__ = ("_by_slot", "_stream", "_targeted", "snapshot", "stale")

    def __init__(self, snapshot: Snapshot, stream_uri: str, *, stale: bool = False) -> None:
        self.snapshot = snapshot
        self.stale = stale
        self._stream = [EventStream(EventStreamEndpoint(stream_uri))]
        self._targeted = targeted_features(snapshot.config)
        self._by_slot: dict[int, Answers] = {}

    def for_subject(self, subject_id: int) -> Answers:
        """The answers for `subject_id`; a subject that is not registered gets the defaults."""
        try:
            slot = self.snapshot.view_slot(subject_id)
        except SubjectNotFound:
            slot = UNKNOWN_SLOT
        answers = self._by_slot.get(slot)
        if answers is None:
            answers = self._by_slot[slot] = self._build(subject_id, slot)
        return answers

    def _build(self, subject_id: int, slot: int) -> Answers:
        snapshot = self.snapshot
        evaluations = evaluate_view(snapshot, subject_id, slot, self._targeted)
        if self.stale:
            evaluations = [as_stale(evaluation) for evaluation in evaluations]
        bulk = encode(BulkEvaluation(evaluations, self._stream))
        return Answers(
            single={e.key: encode(with_revision(e, snapshot.revision)) for e in evaluations},
            bulk=bulk,
            etag=entity_tag(bulk),
        )
