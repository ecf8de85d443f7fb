"""Serving: a subject's flags and the subject itself, from the in-memory snapshot only.

``GET /v1/subjects/{subject_id}/flags`` is the hot path. ``FlagsFastPath`` answers it ahead of
Starlette's middleware and router: match the path by hand, one snapshot lookup that returns the
pre-encoded ``{"flags": {...}}`` bytes, two ASGI messages with a prebuilt header list. Anything
it does not answer with a 200 (a malformed or unknown id, no snapshot yet, a HEAD request) goes
on to the router, whose route below is the reference behaviour and produces every error.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import Scope, Send

from flaggery.engine import Explanation
from flaggery.errors import DatabaseUnavailable, SubjectNotFound
from flaggery.http.codec import Flags, IgnoredQuery, SubjectOut, parse_subject_id
from flaggery.http.endpoint import MIN_REVISION_HEADER, Call, Operation
from flaggery.http.metrics import Metrics, ObservingTally, Tally

__all__ = ["FLAGS_ROUTE", "OPERATIONS", "FlagsFastPath"]

FLAGS_ROUTE = "/v1/subjects/{subject_id}/flags"
_PREFIX = "/v1/subjects/"
_SUFFIX = "/flags"
_ID_START, _ID_END = len(_PREFIX), -len(_SUFFIX)
_CONTENT_TYPE = (b"content-type", b"application/json")
_MIN_REVISION = MIN_REVISION_HEADER.lower().encode()


async def get_flags(call: Call[IgnoredQuery, None]) -> bytes:
    """The snapshot's pre-encoded ``Flags`` JSON, sent as is."""
    call.services.require_snapshot()
    return call.evaluator.flags_json(call.subject_id())


async def get_subject(call: Call[IgnoredQuery, None]) -> SubjectOut:
    call.services.require_snapshot()
    view = call.evaluator.subject(call.subject_id())
    return SubjectOut(view.id, view.weight, view.bucket, list(view.groups))


async def explain(call: Call[IgnoredQuery, None]) -> Explanation:
    """The engine's explanation, encoded as is: the REST shape is the engine's type."""
    call.services.require_snapshot()
    return call.evaluator.explain(call.subject_id())


OPERATIONS = (
    Operation("GET", FLAGS_ROUTE, get_flags, Flags, "Resolve a subject's flags", "serving",
              query=IgnoredQuery, errors=(SubjectNotFound, DatabaseUnavailable), public=True,
              description="{feature: variant} from this process's in-memory snapshot, without "
              "database access. Served in read-only mode."),
    Operation("GET", "/v1/subjects/{subject_id}", get_subject, SubjectOut, "Get a subject",
              "serving", query=IgnoredQuery, errors=(SubjectNotFound, DatabaseUnavailable),
              public=True, description="From the in-memory snapshot. Served in read-only mode."),
    Operation("GET", "/v1/subjects/{subject_id}/explain", explain, Explanation,
              "Explain a subject's flags", "serving", query=IgnoredQuery,
              errors=(SubjectNotFound, DatabaseUnavailable), public=True,
              description="Per feature: the variant and its source (default; rollout with its "
              "proportion; A/B test and group; group override), from the same in-memory snapshot "
              "as the flags. Of several groups overriding a feature, the last joined wins."),
)  # fmt: skip


class FlagsFastPath:
    """Answers ``GET /v1/subjects/{id}/flags`` with a 200, or returns False to let the router
    answer. Lives on the app; ``flags_json`` is set once the snapshot is loaded."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.flags_json: Callable[[int], bytes] | None = None
        self._tally: Tally | ObservingTally | None = (
            None if metrics is None else metrics.tally(FLAGS_ROUTE, "GET", 200)
        )

    def body(self, path: str) -> bytes | None:
        """The flags of the subject in ``path``, or None if this is not a plain 200."""
        flags_json = self.flags_json
        if flags_json is None or not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            return None
        try:
            return flags_json(parse_subject_id(path[_ID_START:_ID_END]))
        except Exception:  # a bad or unknown id, or anything else: the router's reply is the one
            return None

    async def serve(self, scope: Scope, send: Send) -> bool:
        if _MIN_REVISION in dict(scope["headers"]):
            return False  # the router's route waits for the revision
        tally = self._tally
        if tally is None:
            body = self.body(scope["path"])
            if body is None:
                return False
            await _send_json(send, body)
            return True
        started = time.perf_counter()
        body = self.body(scope["path"])
        if body is None:
            return False
        await _send_json(send, body)
        tally.record(time.perf_counter() - started)
        return True


async def _send_json(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [_CONTENT_TYPE, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
