"""Serving: a subject's flags and the subject itself, from the in-memory snapshot only.

``GET /v1/subjects/{subject_id}/flags`` and ``GET /v1/keys/{key}/flags`` (flaggery.http.keys)
are the hot path. ``FlagsFastPath`` answers both ahead of Starlette's middleware and router:
match the path by hand, one pass over the headers (``If-None-Match``), snapshot lookups that
return the pre-encoded ``{"flags": {...}}`` bytes and their precomputed ETag. flaggery's HTTP
protocol (`flaggery.http.protocol`) asks it first, from the parsed request, and writes the
answer itself; the app asks it again for requests that reach ASGI (and under any other ASGI
server), sending two ASGI messages.
Anything it does not answer with a 200 or a 304 (a malformed or unknown id, no snapshot yet,
a HEAD request, a token problem) goes on to the router, whose route below is the reference
behaviour and produces every error.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from starlette.responses import Response
from starlette.types import Scope, Send

from flaggery.access import HostRule, Keyring
from flaggery.caching import CACHE_CONTROL, etag_matches, if_none_match, not_modified_headers
from flaggery.engine import Explanation, Snapshot
from flaggery.engine.assignment_tally import AssignmentTally
from flaggery.errors import DatabaseUnavailable, SubjectNotFound
from flaggery.http.codec import (
    CONTEXT_PREFIX,
    ContextQuery,
    Flags,
    IgnoredQuery,
    SubjectOut,
    parse_subject_id,
)
from flaggery.http.endpoint import MIN_REVISION_HEADER, Call, Operation, utf8_path
from flaggery.http.metrics import Metrics, ObservingTally, Tally

__all__ = [
    "FLAGS_ROUTE",
    "KEY_FLAGS_ROUTE",
    "KEY_PREFIX",
    "OPERATIONS",
    "FlagsFastPath",
    "Headers",
    "response_headers",
]

FLAGS_ROUTE = "/v1/subjects/{subject_id}/flags"
KEY_FLAGS_ROUTE = "/v1/keys/{key:targeting_key}/flags"
KEY_PREFIX = "/v1/keys/"
_PREFIX = "/v1/subjects/"
_SUFFIX = "/flags"
_ID_START, _ID_END = len(_PREFIX), -len(_SUFFIX)
_KEY_START = len(KEY_PREFIX)
_CONTENT_TYPE = (b"content-type", b"application/json")
_MIN_REVISION = MIN_REVISION_HEADER.lower().encode()
# Up to 18 ASCII digits is always a valid non-negative signed 64-bit id: `int()` alone reads it.
_PLAIN_ID_DIGITS = 18
_CONTEXT = CONTEXT_PREFIX.encode()  # in a query string: maybe an evaluation context
_SUBJECT = "\x00subject"  # names the unit of a subject route; no query can send NUL names

Headers = list[tuple[bytes, bytes]]
"""ASGI's header list: (lower-case name, value) byte pairs."""


async def get_flags(call: Call[ContextQuery, None]) -> Response:
    """The snapshot's pre-encoded ``Flags`` JSON, sent as is, with its ETag (304 on a match);
    with ``context.NAME`` parameters, those of the view the context's rule groups give."""
    call.services.require_snapshot()
    snapshot, subject_id = call.evaluator.snapshot, call.subject_id()
    body, etag = snapshot.flags_json(subject_id), snapshot.flags_etag(subject_id)
    if call.query.context:
        view = call.evaluator.evaluate(*_subject_request(subject_id, call)).view
        body, etag = view.json, view.etag
    validators = if_none_match(call.headers.raw)
    if validators is not None and etag_matches(validators, etag):
        return Response(status_code=304, headers=_str_headers(not_modified_headers(etag)))
    headers = _str_headers([(b"etag", etag), CACHE_CONTROL])
    return Response(body, headers=headers, media_type="application/json")


def _str_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


async def get_subject(call: Call[IgnoredQuery, None]) -> SubjectOut:
    call.services.require_snapshot()
    view = call.evaluator.subject(call.subject_id())
    return SubjectOut(view.id, view.weight, view.bucket, list(view.groups))


async def explain(call: Call[ContextQuery, None]) -> Explanation:
    """The engine's explanation, encoded as is: the REST shape is the engine's type. With
    ``context.NAME`` parameters, the rule groups the context matched too."""
    call.services.require_snapshot()
    subject_id = call.subject_id()
    explained = call.evaluator.explain(subject_id)
    if not call.query.context:
        return explained
    by_key = call.evaluator.explain_key(*_subject_request(subject_id, call))
    return msgspec.structs.replace(
        explained,
        groups=by_key.groups,
        features=by_key.features,
        rule_groups=by_key.rule_groups,
    )


def _subject_request(
    subject_id: int, call: Call[ContextQuery, None]
) -> tuple[str, dict[str, object], str]:
    """(key, context, subject attribute) of a subject's request with an evaluation context:
    its ``context.NAME`` parameters, the id as ``targetingKey`` (rules on ``userId`` see it,
    as over OFREP), and the subject named under an attribute no rule can name, so that the
    subject is the unit whatever its id (negative ids are no canonical key)."""
    key = str(subject_id)
    context: dict[str, object] = {**call.query.context, "targetingKey": key}
    context[_SUBJECT] = subject_id
    return key, context, _SUBJECT


OPERATIONS = (
    Operation("GET", FLAGS_ROUTE, get_flags, Flags, "Resolve a subject's flags", "serving",
              query=ContextQuery, errors=(SubjectNotFound, DatabaseUnavailable), public=True,
              description="{feature: variant} from this process's in-memory snapshot, without "
              "database access. Served in read-only mode. context.NAME=VALUE parameters are an "
              "evaluation context for targeting rules (docs/targeting.md)."),
    Operation("GET", "/v1/subjects/{subject_id}", get_subject, SubjectOut, "Get a subject",
              "serving", query=IgnoredQuery, errors=(SubjectNotFound, DatabaseUnavailable),
              public=True, description="From the in-memory snapshot. Served in read-only mode."),
    Operation("GET", "/v1/subjects/{subject_id}/explain", explain, Explanation,
              "Explain a subject's flags", "serving", query=ContextQuery,
              errors=(SubjectNotFound, DatabaseUnavailable), public=True,
              description="Per feature: the variant and its source (default; rollout with its "
              "proportion; A/B test and group; group override), from the same in-memory snapshot "
              "as the flags. Of several groups overriding a feature, the last joined wins."),
)  # fmt: skip


class FlagsFastPath:
    """Answers ``GET /v1/subjects/{id}/flags`` and ``GET /v1/keys/{key}/flags`` with a 200 or
    a 304, or returns False to let the router answer. Lives on the app; `snapshot_of` is set
    once the snapshot is loaded.

    It leaves to the router what the router does better: errors (a bad or unknown id, a
    missing or wrong client token, a reader or admin secret, which the failed-attempt limit
    covers, a Host the open loopback server does not answer), HEAD, and browser requests
    (``Origin``) when CORS is on, which need the CORS middleware's headers. The token and Host
    checks cost nothing when client tokens are not required and the Host rule does not apply.
    """

    def __init__(
        self,
        metrics: Metrics | None,
        keyring: Keyring,
        cors: bool,
        hosts: HostRule | None = None,
    ) -> None:
        self.snapshot_of: Callable[[], Snapshot] | None = None
        self.assignments: AssignmentTally | None = None
        """Where each answer (200 or 304) is counted by bucket, when the server takes
        exposures; requests left to the router (an evaluation context, HEAD, CORS) are not."""
        self._keyring = keyring if keyring.clients_required else None
        self._hosts = hosts
        self._cors = cors
        # The answer to a browser (with Origin, through the router) carries CORS headers that
        # this one lacks: a cache must not hand one for the other.
        self._vary: Headers = [(b"vary", b"Origin")] if cors else []
        self._tallies: dict[tuple[bool, int], Tally | ObservingTally] | None = (
            None
            if metrics is None
            else {
                (by_key, status): metrics.tally(route, "GET", status)
                for by_key, route in ((False, FLAGS_ROUTE), (True, KEY_FLAGS_ROUTE))
                for status in (200, 304)
            }
        )

    # The hot path, inlined: each refusal is one test, and a helper call costs a frame.
    def answer(self, path: str, headers: Headers) -> tuple[int, bytes, bytes, bool] | None:  # noqa: C901
        """(status, body, etag, by key) for a plain 200 or 304 of a GET of `path` (no query
        string, percent-decoded), or None to leave the request to the router."""
        snapshot_of = self.snapshot_of
        if snapshot_of is None or not path.endswith(_SUFFIX):
            return None
        by_key = path.startswith(KEY_PREFIX)
        if not (by_key or path.startswith(_PREFIX)):
            return None
        validators = None  # every If-None-Match line, as one list (RFC 9110)
        for name, value in headers:
            if name == b"if-none-match":
                validators = value if validators is None else validators + b", " + value
            elif name == b"origin" and self._cors:
                return None
            elif name == _MIN_REVISION:
                return None  # the router's route waits for the revision
        if self._keyring is not None and not self._keyring.serves_flags(headers):
            return None
        hosts = self._hosts
        if hosts is not None:  # an open loopback server (flaggery.access.hosts)
            for name, value in headers:
                if name == b"host" and not hosts.allows(value):
                    return None
        try:
            snapshot = snapshot_of()
            if by_key:
                view = snapshot.evaluate(path[_KEY_START:_ID_END]).view
                body, etag, bucket = view.json, view.etag, view.bucket
            else:
                body, etag, bucket = snapshot.flags_answer(_subject_id(path[_ID_START:_ID_END]))
        except Exception:  # a bad key or id, or anything else: the router's reply is the one
            return None
        assignments = self.assignments
        if assignments is not None:  # AssignmentTally.count, inlined
            served = assignments.served
            served[bucket] = served.get(bucket, 0) + 1
        if validators is not None and etag_matches(validators, etag):
            return 304, b"", etag, by_key
        return 200, body, etag, by_key

    def respond(
        self,
        path: str,
        headers: Headers,
        write: Callable[[int, Headers, bytes], None],
    ) -> bool:
        """Answer a GET of `path` through ``write(status, headers, body)`` (flaggery's
        protocol writes it to the socket), or return False to leave it to the ASGI app."""
        tallies = self._tallies
        started = time.perf_counter() if tallies is not None else 0.0
        response = self.answer(path, headers)
        if response is None:
            return False
        status, body, etag, by_key = response
        write(status, response_headers(status, body, etag) + self._vary, body)
        if tallies is not None:
            tallies[by_key, status].record(time.perf_counter() - started)
        return True

    async def serve(self, scope: Scope, send: Send) -> bool:
        """Answer an ASGI GET request as `respond` does, or return False (also for a request
        with an evaluation context: the router's route applies its rules)."""
        if _CONTEXT in scope["query_string"] or not utf8_path(scope):
            return False
        tallies = self._tallies
        started = time.perf_counter() if tallies is not None else 0.0
        response = self.answer(scope["path"], scope["headers"])
        if response is None:
            return False
        status, body, etag, by_key = response
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers(status, body, etag) + self._vary})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        if tallies is not None:
            tallies[by_key, status].record(time.perf_counter() - started)
        return True


def _subject_id(text: str) -> int:
    """The id of a path segment: plain digits read directly (the common case, a third of the
    cost of the full rule); anything else, including every error, by `parse_subject_id`."""
    if len(text) <= _PLAIN_ID_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return parse_subject_id(text)


def response_headers(status: int, body: bytes, etag: bytes) -> Headers:
    """The headers of the fast path's 200 (with its body's length) or 304."""
    if status == 304:
        return not_modified_headers(etag)
    return [_CONTENT_TYPE, (b"content-length", b"%d" % len(body)), (b"etag", etag), CACHE_CONTROL]
