"""Operations: one declaration per REST route, from which both the Starlette route and its
OpenAPI entry are built, so the two cannot drift apart.

A handler receives a ``Call`` (the app's services, the raw path parameters, the decoded query
and body) and returns a response Struct, or its JSON already encoded. The generic endpoint
decodes, calls, encodes, and after a successful write catches this process's snapshot up
before answering (read-your-writes within one process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from flaggery.access import Keyring
from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.errors import (
    DatabaseUnavailable,
    EntityChanged,
    FlaggeryError,
    NotAdmin,
    RevisionNotReached,
    UpstreamUnavailable,
    ValidationError,
)
from flaggery.hooks.sending import Deliverer
from flaggery.http.auth import AdminGuard
from flaggery.http.codec import NoQuery, decode_body, decode_query, encode, parse_subject_id
from flaggery.http.downloads import SharedStates
from flaggery.http.errors import ContentTooLarge, RequestValidationError
from flaggery.http.metrics import Metrics
from flaggery.live.evaluator import Evaluator
from flaggery.live.exposure_intake import ExposureIntake
from flaggery.live.health_watch import HealthWatch
from flaggery.request_body import BodyTooLarge, read_body, utf8_path
from flaggery.settings import Settings
from flaggery.store.actor import current_actor
from flaggery.store.database import last_written_revision
from flaggery.store.repository import AsyncFlaggery
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.send_watch import SendWatch
from flaggery.tokens import Role

__all__ = [
    "MIN_REVISION_HEADER",
    "REVISION_HEADER",
    "Call",
    "Operation",
    "Services",
    "build_routes",
    "if_match_revision",
    "min_revision",
    "utf8_path",
]

log = logging.getLogger(__name__)

Q = TypeVar("Q")
B = TypeVar("B")

MAX_BODY_BYTES = 64 * 1024 * 1024  # a bulk add of about a million subjects
# Read-your-writes: a write answers once this process's snapshot includes it, or after this
# long (the write is committed either way; the change feed then catches up on its own).
CATCH_UP_TIMEOUT_SECONDS = 5.0
REVISION_HEADER = "X-Flaggery-Revision"
"""On every write's response: the revision the write committed. On a read of a feature,
rollout, group or A/B test: a revision the answer is at least as new as (If-Match)."""
MIN_REVISION_HEADER = "X-Flaggery-Min-Revision"
"""On any read: answer from a snapshot at this revision or later (waiting a bounded time)."""


def min_revision(headers: Mapping[str, str]) -> int | None:
    """The request's MIN_REVISION_HEADER as a revision, or None if absent. Raises
    RequestValidationError for anything but one decimal revision."""
    text = headers.get(MIN_REVISION_HEADER.lower())
    if text is None:
        return None
    try:
        return parse_decimal(text.strip(), f"{MIN_REVISION_HEADER} (a revision)")
    except DecimalTextError as error:
        raise RequestValidationError(str(error)) from None


def if_match_revision(values: Iterable[str]) -> int | None:
    """The revision an ``If-Match`` header names (RFC 9110 13.1.1): the write goes ahead only
    if its entity has not changed after that revision. ``"12"`` (an entity tag) or ``12``;
    several tags (one list, over one or more header lines) name the latest of them; ``*`` or
    no header: None, no condition beyond the entity existing. A weak tag (``W/"12"``) never
    matches in a strong comparison: EntityChanged, as RFC 9110 prescribes. Raises
    RequestValidationError for anything else."""
    tags = [tag.strip() for value in values for tag in value.split(",") if tag.strip()]
    if not tags or "*" in tags:
        return None
    revisions = []
    for tag in tags:
        if tag.startswith("W/"):
            continue
        digits = tag[1:-1] if len(tag) > 1 and tag[0] == tag[-1] == '"' else tag
        try:
            revisions.append(parse_decimal(digits, "If-Match (a revision)"))
        except DecimalTextError as error:
            raise RequestValidationError(f'{error} Send revisions, such as "12".') from None
    if not revisions:
        raise EntityChanged(
            "If-Match names only weak entity tags, which never match (RFC 9110 13.1.1): "
            'send the revision as a strong tag, such as "12".'
        )
    return max(revisions)


_EDGE_HAS_NO_DATABASE = (
    "This edge server has no database (it follows FLAGGERY_UPSTREAM_URL): ask "
    "the admin server or a read-only replica with a database."
)


@dataclass
class Services:
    """What the lifespan owns, for the handlers."""

    settings: Settings
    store_or_none: AsyncFlaggery | None
    """None on an edge (FLAGGERY_UPSTREAM_URL): it has no database."""
    evaluator: Evaluator
    metrics: Metrics | None
    broadcast: Broadcast = field(default_factory=Broadcast)
    """This process's stream events, fed by the evaluator (flaggery.stream)."""
    send_watch: SendWatch = field(default_factory=SendWatch)
    """This process's stream connections, ended when a send stays blocked."""
    downloads: SharedStates = field(default_factory=SharedStates)
    """The states of the snapshots being downloaded (GET /v1/snapshot), one each."""
    no_snapshot_reason: str | None = None
    """Why the last attempt to load the first snapshot failed; None before any failed."""
    deliverer: Deliverer | None = None
    """The admin server's webhook deliverer (flaggery.hooks); None on other servers."""
    exposure_intake: ExposureIntake | None = None
    """This process's exposures, written in batches (None on an edge: no database)."""
    health_watch: HealthWatch | None = None
    """The live A/B tests' health, checked at an interval (None on an edge)."""

    @property
    def exposures(self) -> ExposureIntake:
        """The exposure intake; raises NotAdmin on an edge, which has no database."""
        if self.exposure_intake is None:
            raise NotAdmin(_EDGE_HAS_NO_DATABASE)
        return self.exposure_intake

    @property
    def store(self) -> AsyncFlaggery:
        """The admin API; raises NotAdmin on an edge, which has no database."""
        if self.store_or_none is None:
            raise NotAdmin(_EDGE_HAS_NO_DATABASE)
        return self.store_or_none

    def require_snapshot(self) -> None:
        # revision is -1 until the first load; before it nothing can be served.
        if self.evaluator.revision < 0:
            edge = self.store_or_none is None
            source = "upstream" if edge else "database"
            reason = self.no_snapshot_reason or f"the {source} has not been reached since start."
            if self.evaluator.build_error is not None:
                reason = str(self.evaluator.build_error)
            # An edge has no database: its snapshot comes from the upstream alone.
            unavailable = UpstreamUnavailable if edge else DatabaseUnavailable
            raise unavailable(f"No snapshot loaded yet: {reason}")

    async def await_revision(self, headers: Mapping[str, str]) -> None:
        """Read-your-writes across processes: if the request names a minimum revision
        (MIN_REVISION_HEADER), wait up to FLAGGERY_MIN_REVISION_WAIT seconds for this process's
        snapshot to reach it. Raises RequestValidationError for a malformed header and
        RevisionNotReached when the wait runs out."""
        wanted = min_revision(headers)
        if wanted is None or self.evaluator.revision >= wanted:
            return
        wait = self.settings.min_revision_wait
        try:
            await self.evaluator.wait_for_revision(wanted, wait)
        except TimeoutError:
            raise RevisionNotReached(
                f"This server is at revision {self.evaluator.revision} and did not reach "
                f"revision {wanted} within {wait:g} s: retry later, or read from the server "
                "that made the write."
            ) from None

    async def catch_up(self, revision: int | None = None) -> None:
        """Refresh the snapshot now (one change-log read) rather than wait for the feed: on
        PostgreSQL a NOTIFY round trip, on SQLite up to a polling interval. With the
        ``revision`` of a write, only until it is applied: the writes committed together
        share one refresh."""
        refresh = (
            self.evaluator.refresh() if revision is None else self.evaluator.refresh_to(revision)
        )
        try:
            async with asyncio.timeout(CATCH_UP_TIMEOUT_SECONDS):  # not wait_for: live.tasks
                refreshed = await refresh
        except TimeoutError:
            refreshed = False
        if not refreshed:
            log.warning(
                "The snapshot could not catch up after a write; the feed will retry.",
                extra={"revision": revision, "actor": current_actor()},
            )


@dataclass(frozen=True)
class Call(Generic[Q, B]):
    services: Services
    path: Mapping[str, str]
    query: Q
    body: B
    headers: Headers = field(default_factory=Headers)
    """The request headers (``.raw``: every line, in order; ``.get``: the first)."""

    @property
    def store(self) -> AsyncFlaggery:
        return self.services.store

    @property
    def evaluator(self) -> Evaluator:
        return self.services.evaluator

    def subject_id(self) -> int:
        return parse_subject_id(self.path["subject_id"])

    def if_revision(self) -> int | None:
        """The request's ``If-Match`` revision (`if_match_revision`), None without one."""
        lines = self.headers.getlist("if-match") if isinstance(self.headers, Headers) else []
        return if_match_revision(lines)


Handler = Callable[[Call[Any, Any]], Awaitable[msgspec.Struct | bytes | Response]]
"""Returns the response Struct, or its JSON already encoded, or a whole Response (for headers
such as an ETag, or a 304)."""


@dataclass(frozen=True)
class Operation:
    """One route: how to call it, what it returns, and which errors it can answer."""

    method: str
    path: str
    handler: Handler
    response: type[msgspec.Struct] | None
    """The JSON body's type; None for a `raw` route whose body is `media_type`."""
    summary: str
    tag: str
    status: int = 200
    query: type[msgspec.Struct] = NoQuery
    body: Any = None
    """A type msgspec decodes the JSON body into; None for no body."""
    optional_body: bool = False
    """An empty body is allowed (the handler gets None): a body added to a 0.2.1 route."""
    errors: tuple[type[FlaggeryError], ...] = ()
    public: bool = False
    """Served in read-only mode and without a token."""
    replica: bool = False
    """A guarded read that read-only servers serve too (history, snapshot, stream)."""
    description: str = ""
    conditional: bool = False
    """A write that takes ``If-Match`` (a revision): 412 if its entity changed since; other
    writes refuse the header rather than ignore a condition the client relies on. A read of
    such an entity: its answer carries REVISION_HEADER, the revision read before it, to send
    back as ``If-Match``."""
    raw: Callable[[Request], Awaitable[Response]] | None = None
    """Answers the request itself (a stream, a binary body) instead of the JSON endpoint;
    `handler` is then only the OpenAPI operation id."""
    media_type: str = "application/json"
    records: bool = False
    """A POST that records client telemetry (exposures): client role, no revision."""
    guard: bool = False
    """The guard route: the guard role (or admin), nothing else (flaggery.tokens.Role)."""
    decoder: msgspec.json.Decoder[Any] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        decoder = None if self.body is None else msgspec.json.Decoder(self.body)
        object.__setattr__(self, "decoder", decoder)

    @property
    def writes(self) -> bool:
        return self.method != "GET" and not self.records

    @property
    def role(self) -> Role | None:
        """The role a token needs for this route (docs/security.md): None for health and
        readiness, client for the serving routes and recording exposures, reader for other
        reads, admin for writes."""
        if self.guard:
            return Role.GUARD
        if self.records:
            return Role.CLIENT
        if self.public:
            return Role.CLIENT if self.tag == "serving" else None
        return Role.ADMIN if self.writes else Role.READER


def build_routes(
    operations: Iterable[Operation], settings: Settings, keyring: Keyring
) -> list[Route]:
    """One route per path, so a wrong method gets 405 with every allowed method listed; the
    guard gives each method its own role (GET a subject is client, POST is admin)."""
    by_path: dict[str, dict[str, Operation]] = {}
    for operation in operations:
        by_path.setdefault(operation.path, {})[operation.method] = operation
    return [_route(path, by_method, settings, keyring) for path, by_method in by_path.items()]


def _route(
    path: str, by_method: Mapping[str, Operation], settings: Settings, keyring: Keyring
) -> Route:
    endpoints = {method: op.raw or _endpoint(op) for method, op in by_method.items()}
    if "GET" in endpoints:
        endpoints["HEAD"] = endpoints["GET"]

    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    roles = {m: op.role for m, op in by_method.items() if op.role is not None}
    admin_only = {m for m, op in by_method.items() if not (op.public or op.replica)}
    if "GET" in roles:
        roles["HEAD"] = roles["GET"]
    if "GET" in admin_only:
        admin_only.add("HEAD")
    guard = [
        Middleware(
            AdminGuard, settings=settings, keyring=keyring, roles=roles, admin_only=admin_only
        )
    ]
    name = "_".join(op.handler.__name__ for op in by_method.values())
    return Route(path, dispatch, methods=list(by_method), name=name, middleware=guard)


def _endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        _require_utf8_path(request.scope)
        query = decode_query(request.query_params, operation.query)
        body = None
        if operation.decoder is not None:
            raw = await _read_body(request)
            if raw or not operation.optional_body:
                body = decode_body(raw, operation.decoder)
        headers = {}
        if not operation.writes:
            await services.await_revision(request.headers)
            if operation.conditional:  # read before the entity: what to send as If-Match
                headers[REVISION_HEADER] = str(await services.store.revision())
        elif "if-match" in request.headers and not operation.conditional:
            raise RequestValidationError(
                f"{operation.method} {operation.path} does not take If-Match: it would not be "
                "checked. Send the write without it."
            )
        call = Call(services, request.path_params, query, body, request.headers)
        result = await operation.handler(call)
        if operation.writes:
            written = last_written_revision()
            await services.catch_up(written)
            if written is not None:
                headers[REVISION_HEADER] = str(written)
        if isinstance(result, Response):
            result.headers.update(headers)
            return result
        content = result if isinstance(result, bytes) else encode(result)
        return Response(content, operation.status, headers, media_type="application/json")

    endpoint.__name__ = operation.handler.__name__
    return endpoint


async def _read_body(request: Request) -> bytes:
    try:
        return await read_body(request.receive, request.headers.raw, MAX_BODY_BYTES)
    except BodyTooLarge as error:
        raise ContentTooLarge(str(error)) from None


def _require_utf8_path(scope: Scope) -> None:
    if not utf8_path(scope):
        raise ValidationError(
            "The path or query is not UTF-8 once percent-decoded: percent-encode names, "
            "targeting keys and values as UTF-8 (é as %C3%A9)."
        )
