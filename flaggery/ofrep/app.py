"""The OFREP endpoints as one raw ASGI app, in front of Starlette like the flags fast path:

    POST /ofrep/v1/evaluate/flags/{key}    one flag for the context's targeting key
    POST /ofrep/v1/evaluate/flags          every flag, with an ETag (If-None-Match -> 304)
    GET  /ofrep/v1/events                  refetchEvaluation events (SSE)

A request is: read the body, decode the context, `Snapshot.evaluate` its targeting key (any key;
a registered subject named by the subject attribute buckets it), one lookup in this snapshot's
answers (`SnapshotAnswers`), send pre-encoded bytes. Every error is answered here in OFREP's
shape (``errorCode``, ``errorDetails``), never in flaggery's envelope, because OFREP clients
parse these; an unexpected exception is logged and answered 500 without details.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from flaggery.access import Keyring
from flaggery.caching import etag_matches, if_none_match
from flaggery.clock import utc_now
from flaggery.engine import SUBJECT_ATTRIBUTE, Evaluation
from flaggery.engine.assignment_tally import AssignmentTally
from flaggery.engine.evaluation import Placement
from flaggery.engine.targeting import check_targeting_key
from flaggery.errors import (
    FlaggeryError,
    Forbidden,
    InvalidTargetingKey,
    TooManyAttempts,
    TooManyStreams,
    Unauthorized,
)
from flaggery.live.evaluator import Evaluator
from flaggery.ofrep.answers import JSON_CONTENT_TYPE, Answers, SnapshotAnswers
from flaggery.ofrep.events import OfrepEvents
from flaggery.ofrep.wire import (
    EvaluationError,
    FlagFailure,
    GeneralError,
    decode_request,
    encode,
)
from flaggery.request_body import BodyTooLarge, read_body, utf8_path
from flaggery.tokens import Role

__all__ = [
    "BULK_PATH",
    "EVENTS_PATH",
    "MAX_BODY_BYTES",
    "OFREP_PREFIX",
    "ROUTES",
    "SINGLE_PREFIX",
    "SINGLE_ROUTE",
    "Headers",
    "OfrepApp",
    "Recorder",
    "Response",
]

log = logging.getLogger(__name__)

OFREP_PREFIX = "/ofrep/"
BULK_PATH = "/ofrep/v1/evaluate/flags"
SINGLE_PREFIX = BULK_PATH + "/"
SINGLE_ROUTE = SINGLE_PREFIX + "{key}"
EVENTS_PATH = "/ofrep/v1/events"
ROUTES = (("POST", SINGLE_ROUTE), ("POST", BULK_PATH), ("GET", EVENTS_PATH))
"""Every (method, route) this app answers, for whoever lists the server's routes (the
role-table test: each needs the client role, docs/security.md)."""
_NOT_UTF8 = "The path is not UTF-8 once percent-decoded: percent-encode flag keys as UTF-8."
MAX_BODY_BYTES = 64 * 1024  # a context is a handful of attributes

Headers = list[tuple[bytes, bytes]]
"""ASGI's header list: (lower-case name, value) byte pairs."""
Response = tuple[int, Headers, bytes]
"""(status, headers, body) of an answer."""


class Recorder(Protocol):
    """Counts and times requests of one route, method and status (``http.metrics.Tally``)."""

    def record(self, seconds: float) -> None: ...


TallyFactory = Callable[[str, str, int], Recorder]


class OfrepApp:
    """Serves OFREP from the evaluator's snapshot; `evaluator` is set by the app's lifespan.

    With metrics, evaluations are counted and timed by route template and status, like the
    router's routes (the event stream is not: its duration is the connection's)."""

    def __init__(
        self,
        keyring: Keyring,
        tally: TallyFactory | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> None:
        """`tally`: makes the recorder of one (route, method, status), e.g. ``Metrics.tally``;
        None for no metrics. `subject_attribute`: the context attribute that names a
        registered subject to bucket by (FLAGGERY_SUBJECT_ATTRIBUTE)."""
        self.evaluator: Evaluator | None = None
        self.assignments: AssignmentTally | None = None
        """Where answered evaluations count for their bucket (set by the app's lifespan when
        it takes exposures): OFREP serves assignments like the flags routes."""
        self._subject_attribute = subject_attribute
        self.events = OfrepEvents()
        self._keyring = keyring
        self._answers: SnapshotAnswers | None = None
        self._make_tally = tally
        self._tallies: dict[tuple[str, str, int], Recorder] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == EVENTS_PATH and scope["method"] in ("GET", "HEAD"):
            try:
                self._check_client(scope)
            except EvaluationError as error:
                await _send_error(send, error, None)
                return
            try:
                await self.events.serve(scope, receive, send)
            except TooManyStreams as full:
                await _send_error(send, _RetryLater(503, str(full), full.retry_after), None)
            return
        started = time.perf_counter()
        route, key = path, None
        try:
            if not utf8_path(scope):  # a flag key read as U+FFFD would name another flag
                raise EvaluationError(400, "PARSE_ERROR", _NOT_UTF8)
            route, key = _route(scope["method"], path)
            status = await self._evaluate(scope, receive, send, key)
        except EvaluationError as error:
            status = error.status
            await _send_error(send, error, key)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception:
            log.exception("OFREP request %s failed", path, extra={"route": path})
            status = 500
            await _send_error(send, EvaluationError(500, "GENERAL", "Internal error."), None)
        if self._make_tally is not None and route in (SINGLE_ROUTE, BULK_PATH):
            self._tally(route, scope["method"], status).record(time.perf_counter() - started)

    def tally(self, route: str, status: int) -> Recorder | None:
        """The recorder of POSTs of `route` answered `status`; None without metrics."""
        return None if self._make_tally is None else self._tally(route, "POST", status)

    def _tally(self, route: str, method: str, status: int) -> Recorder:
        tally = self._tallies.get((route, method, status))
        if tally is None:
            assert self._make_tally is not None
            tally = self._tallies[route, method, status] = self._make_tally(route, method, status)
        return tally

    async def _evaluate(self, scope: Scope, receive: Receive, send: Send, key: str | None) -> int:
        """Answer an evaluation; return the status sent. Raises EvaluationError."""
        if scope["method"] != "POST":
            raise _NotAllowed(scope["method"], "POST")
        self._check_client(scope)
        body = await _read_body(scope, receive)
        status, headers, answer = self.evaluation(key, scope["headers"], body)
        await _send(send, status, headers, answer)
        return status

    def evaluation(self, key: str | None, headers: Headers, body: bytes) -> Response:
        """(status, headers, body) of an evaluation POST whose method and client role were
        checked and whose whole `body` was read: of the single-flag route for flag `key`,
        of the bulk route for None (its ``If-None-Match`` read from `headers`). `answer`
        with the validators read. Only an unexpected exception escapes."""
        return self.answer(key, if_none_match(headers) if key is None else None, body)

    # The hot path, inlined: a request asked before in this snapshot (`SnapshotAnswers.by_body`)
    # is a few dict lookups; each helper call would cost a frame.
    def answer(self, key: str | None, validators: bytes | None, body: bytes) -> Response:
        """(status, headers, body) of an evaluation POST whose method and client role were
        checked and whose whole `body` was read: of the single-flag route for flag `key`, of
        the bulk route for None, given every ``If-None-Match`` line of the request as one
        list (`validators`, None without one; `flaggery.caching.if_none_match`). The same
        bytes whoever sends them (this app, or flaggery's protocol without ASGI:
        `OfrepFastPath`). Only an unexpected exception escapes."""
        try:
            current, evaluator = self._answers, self.evaluator
            if (
                current is None
                or evaluator is None
                or current.snapshot is not evaluator.snapshot
                or current.stale != evaluator.stale
            ):
                answers = self._evaluate_body(body, None)  # `_current` starts them afresh
            else:
                answers = current.by_body.get(body) or self._evaluate_body(body, current)
            if self.assignments is not None:
                self.assignments.count(answers.bucket)
            if key is not None:
                reply = answers.replies.get(key) or answers.single_reply(key)
                if reply is None:
                    raise EvaluationError(404, "FLAG_NOT_FOUND", f"Flag {key!r} was not found.")
                return reply
            bulk = answers.bulk_replies or answers.make_bulk_replies()
            if validators is not None and (
                validators == bulk[2] or etag_matches(validators, bulk[2])
            ):
                return bulk[1]
            return bulk[0]
        except EvaluationError as error:
            return _error_response(error, key)

    def _evaluate_body(self, body: bytes, current: SnapshotAnswers | None) -> Answers:
        """The answers for the unit and context of a request `body`, from `current` (this
        snapshot's answers, if `answer` found them current; None: `_current`). Raises
        EvaluationError."""
        targeting_key, request_context = decode_request(body)
        if current is None:
            current = self._current()
        # ``currentTime`` for date rules: no clock read for a snapshot without rules.
        now = self._now() if current.rules else None
        context: dict[str, object] | None = request_context
        if not current.rules and self._subject_attribute not in request_context:
            # Without rules only the subject attribute of a context can change the unit:
            # the key alone is then one lookup when it was evaluated before.
            context = None
        try:
            # Without a context the key's cached evaluation is one lookup (`evaluate` checks
            # the key first); with one, `place` finds the unit's bucket and groups without
            # resolving every feature of a view first met here (rule groups make many).
            evaluation: Evaluation | Placement
            if context is None:
                evaluation = current.snapshot.evaluate(targeting_key)
            else:
                checked = check_targeting_key(targeting_key)
                evaluation = current.snapshot.place(checked, context, self._subject_attribute, now)
        except InvalidTargetingKey as error:
            raise EvaluationError(400, "INVALID_CONTEXT", f"targetingKey: {error}") from None
        answers = current.for_unit(evaluation)
        current.remember(body, answers)
        return answers

    def _check_client(self, scope: Scope) -> None:
        """The client role (the role table, docs/security.md), when client tokens are
        configured. Raises EvaluationError with the status REST would answer."""
        if not self._keyring.clients_required:
            return
        try:
            self._keyring.check(scope, Role.CLIENT)
        except FlaggeryError as refused:
            if isinstance(refused, TooManyAttempts):
                raise _RetryLater(429, str(refused), refused.retry_after) from None
            raise EvaluationError(_status_of(refused), "GENERAL", str(refused)) from None

    def _now(self) -> datetime:
        """The evaluator's clock: ``currentTime`` for date rules when a context has none."""
        return utc_now() if self.evaluator is None else self.evaluator.now()

    def _current(self) -> SnapshotAnswers:
        """This snapshot's answers, started afresh when a new snapshot was swapped in or the
        staleness moved."""
        evaluator = self.evaluator
        if evaluator is None or evaluator.revision < 0:
            raise EvaluationError(
                503,
                "GENERAL",
                "No snapshot loaded yet: the database (an edge's upstream) has not been reached.",
            )
        snapshot, stale = evaluator.snapshot, evaluator.stale
        answers = self._answers
        if answers is None or answers.snapshot is not snapshot or answers.stale != stale:
            answers = self._answers = SnapshotAnswers(snapshot, EVENTS_PATH, stale=stale)
        return answers


def _route(method: str, path: str) -> tuple[str, str | None]:
    """The evaluation route of `path` and its flag key (None for the bulk route); the OFREP
    error for any other path (405 with ``Allow`` for the event stream's path)."""
    if path.startswith(SINGLE_PREFIX):
        return SINGLE_ROUTE, path[len(SINGLE_PREFIX) :]
    if path == BULK_PATH:
        return BULK_PATH, None
    if path == EVENTS_PATH:
        raise _NotAllowed(method, "GET")
    raise EvaluationError(404, "GENERAL", f"No OFREP route {method} {path}.")


class _NotAllowed(EvaluationError):
    """405 with the ``Allow`` header RFC 9110 (section 15.5.6) requires."""

    def __init__(self, method: str, allow: str) -> None:
        super().__init__(405, "GENERAL", f"{method} is not allowed: use {allow}.")
        self.allow = allow


class _RetryLater(EvaluationError):
    """An error answered with ``Retry-After: <retry_after>`` (seconds)."""

    def __init__(self, status: int, details: str, retry_after: int) -> None:
        super().__init__(status, "GENERAL", details)
        self.retry_after = retry_after


def _status_of(refused: FlaggeryError) -> int:
    if isinstance(refused, Unauthorized):
        return 401
    if isinstance(refused, Forbidden):
        return 403
    return 400  # AmbiguousCredentials


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    try:
        return await read_body(receive, scope["headers"], MAX_BODY_BYTES)
    except BodyTooLarge as error:
        raise EvaluationError(413, "GENERAL", str(error)) from None


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: EvaluationError, key: str | None) -> None:
    await _send(send, *_error_response(error, key))


def _error_response(error: EvaluationError, key: str | None) -> Response:
    if key is not None and error.status in (400, 404):
        body = encode(FlagFailure(key, error.code, error.details))
    else:
        body = encode(GeneralError(error.code, error.details))
    headers = [JSON_CONTENT_TYPE, (b"content-length", b"%d" % len(body))]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="flaggery"'))
    elif isinstance(error, _RetryLater):
        headers.append((b"retry-after", b"%d" % error.retry_after))
    elif isinstance(error, _NotAllowed):
        headers.append((b"allow", error.allow.encode()))
    return error.status, headers, body
