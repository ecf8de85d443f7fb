"""OFREP answers for one snapshot, encoded once per view and reused by every request.

Units (registered subjects, hashed keys) with the same bucket and groups share a view, so
they share answers, apart from the metadata that says which kind of unit asked
(`flag_evaluation.answer_key`): a request for a view's flag explains that feature and encodes
its single-flag body once (the snapshot's resolver: no pass over the configuration), the bulk
body and its ETag are made when first asked for; later requests for any unit of that view
are a dict lookup. Answers are built on first use
rather than with the snapshot, because a snapshot is rebuilt on every write and most of its
views may never be asked for over OFREP before the next one.
"""

from __future__ import annotations

from flaggery.caching import CACHE_CONTROL, not_modified_headers
from flaggery.engine import Evaluation, Snapshot
from flaggery.engine.evaluation import BoundedCache, Placement
from flaggery.engine.views import entity_tag
from flaggery.flag_evaluation import (
    AnswerKey,
    UnitEvaluations,
    answer_key,
    as_stale,
    targeted_features,
    with_revision,
)
from flaggery.ofrep.wire import BulkEvaluation, EventStream, EventStreamEndpoint, encode

__all__ = [
    "ANSWERS_CACHE_SIZE",
    "BODY_CACHE_SIZE",
    "JSON_CONTENT_TYPE",
    "KEPT_BODY_BYTES",
    "Answers",
    "Reply",
    "SnapshotAnswers",
]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]
"""(status, ASGI headers, body) of an answer."""

ANSWERS_CACHE_SIZE = 8_192
"""Views whose answers are kept per snapshot (each a few KB for 20 features), all going at
once when full: rule groups make views at request time without end."""

BODY_CACHE_SIZE = 16_384
"""Request bodies whose answers are kept per snapshot (`SnapshotAnswers.remember`)."""
KEPT_BODY_BYTES = 512
"""The longest body kept: a key and a few attributes (at most 8 MB of bodies in all)."""


class Answers:
    """Everything OFREP sends for the units of one view, each body encoded when first asked
    for: a view met at request time (rule groups make many) is often asked for one flag only,
    and every other flag's body and the bulk body would be encoded for nothing.

    The hot path reads two attributes rather than calling a method: `replies` (feature ->
    its single-flag 200, once built) and `bulk_replies` (the bulk 200, its 304 and their
    ETag, once built); `single_reply` and `make_bulk_replies` build them."""

    __slots__ = (
        "_bulk",
        "_evaluations",
        "_revision",
        "_single",
        "_stale",
        "_stream",
        "bucket",
        "bulk_replies",
        "replies",
    )

    def __init__(
        self,
        evaluations: UnitEvaluations,
        revision: int,
        stream: list[EventStream],
        *,
        stale: bool = False,
    ) -> None:
        self._evaluations = evaluations
        self.bucket = evaluations.bucket
        """The view's bucket (None while the database has none): what an answer counts for
        in the assignment tally."""
        self._stale = stale
        """Every answer says STALE (`as_stale`)."""
        self._revision = revision
        self._stream = stream
        self._single: dict[str, bytes] = {}
        self.replies: dict[str, Reply] = {}
        """Feature -> the whole 200 of the single-flag route, for each feature asked for so
        far (`single_reply` adds them); its header list is shared, never to be modified."""
        self.bulk_replies: tuple[Reply, Reply, bytes] | None = None
        """(the bulk route's 200, its 304, their quoted ETag) once asked for
        (`make_bulk_replies`); the header lists are shared, never to be modified."""
        self._bulk: bytes | None = None

    def single(self, key: str) -> bytes | None:
        """The encoded single-flag evaluation of feature `key` (with ``revision`` in its
        metadata), or None if there is no such feature."""
        body = self._single.get(key)
        if body is None:
            evaluation = self._evaluations.get(key)
            if evaluation is None:
                return None
            if self._stale:
                evaluation = as_stale(evaluation)
            body = self._single[key] = encode(with_revision(evaluation, self._revision))
        return body

    def single_reply(self, key: str) -> Reply | None:
        """The whole 200 answer of the single-flag route for feature `key`, built once per
        feature (kept in `replies`): (status, headers, body), the header list shared by every
        request (never to be modified); None if there is no such feature."""
        reply = self.replies.get(key)
        if reply is None:
            body = self.single(key)
            if body is None:
                return None
            length = (b"content-length", b"%d" % len(body))
            reply = self.replies[key] = (200, [JSON_CONTENT_TYPE, length], body)
        return reply

    @property
    def bulk(self) -> bytes:
        """The encoded bulk evaluation: every feature, and the event stream."""
        if self._bulk is None:
            evaluations = self._evaluations.all()
            if self._stale:
                evaluations = [as_stale(evaluation) for evaluation in evaluations]
            self._bulk = encode(BulkEvaluation(evaluations, self._stream))
        return self._bulk

    def make_bulk_replies(self) -> tuple[Reply, Reply, bytes]:
        """`bulk_replies`, built on first use: the bulk route's whole 200, the 304 of a request
        whose ``If-None-Match`` matches, and the ETag both carry. Bulk metadata has no
        revision, so the tag changes only when something in the unit's answers does: a
        write elsewhere still gets a 304."""
        replies = self.bulk_replies
        if replies is None:
            bulk = self.bulk
            etag = entity_tag(bulk)
            length = (b"content-length", b"%d" % len(bulk))
            headers = [JSON_CONTENT_TYPE, length, (b"etag", etag), CACHE_CONTROL]
            not_modified = (304, not_modified_headers(etag), b"")
            replies = self.bulk_replies = ((200, headers, bulk), not_modified, etag)
        return replies

    @property
    def etag(self) -> bytes:
        """Quoted ETag of `bulk` (`make_bulk_replies`)."""
        return self.make_bulk_replies()[2]


class SnapshotAnswers:
    """The answers of one snapshot, per view, and whether it is ``stale`` (then every reason
    is STALE: flaggery.flag_evaluation.as_stale). Not thread-safe; one per event loop."""

    __slots__ = ("_by_view", "_stream", "_targeted", "by_body", "rules", "snapshot", "stale")

    def __init__(self, snapshot: Snapshot, stream_uri: str, *, stale: bool = False) -> None:
        self.snapshot = snapshot
        self.stale = stale
        self.rules = bool(snapshot.config.rules)
        """Whether the snapshot has rules (then a context's evaluation may need the time)."""
        self._stream = [EventStream(EventStreamEndpoint(stream_uri))]
        self._targeted = targeted_features(snapshot.config)
        self._by_view: BoundedCache[AnswerKey, Answers] = BoundedCache(ANSWERS_CACHE_SIZE)
        self.by_body: BoundedCache[bytes, Answers] = BoundedCache(BODY_CACHE_SIZE)
        """Request body -> the answers it got (`remember`): a client asking again with the
        same context skips decoding and evaluating it."""

    def for_unit(self, evaluation: Placement | Evaluation) -> Answers:
        """The answers for the unit of `evaluation` (`Snapshot.place`, or `evaluate`, in this
        snapshot).
        At most two per view of the snapshot (a registered subject's and a hashed key's)."""
        key = answer_key(evaluation)
        answers = self._by_view.get(key)
        if answers is None:
            answers = self._build(evaluation)
            self._by_view.put(key, answers)
        return answers

    def remember(self, body: bytes, answers: Answers) -> None:
        """Keep the `answers` a request `body` got, when they can only ever be its answers in
        this snapshot: without rules (a date rule's answer moves with the clock) and for a
        short body. The subject attribute is one per server, so the body decides the unit."""
        if not self.rules and len(body) <= KEPT_BODY_BYTES:
            self.by_body.put(body, answers)

    def _build(self, evaluation: Placement | Evaluation) -> Answers:
        snapshot = self.snapshot
        evaluations = UnitEvaluations(snapshot, evaluation, self._targeted)
        return Answers(evaluations, snapshot.revision, self._stream, stale=self.stale)
