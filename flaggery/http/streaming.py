"""GET /v1/stream: the change stream as Server-Sent Events (sse-starlette), reader role.

Each event is ``id: <revision>``, ``event: change|reload|schedule|freshness``, ``data: <JSON>``
(flaggery.stream.events). The response's X-Flaggery-Revision is this server's revision when
the stream starts, so a follower knows at once whether it is behind; X-Flaggery-Stale says
whether this server's own answers may lag (then ``freshness`` events say when that moves). A
client resumes with ``Last-Event-ID``: the events after it are replayed from this process's
backlog or the change log, or a reload event says they are gone. Idle streams get a
keep-alive comment every FLAGGERY_STREAM_KEEPALIVE seconds (15); a client that cannot keep
up is disconnected: QUEUE_EVENTS behind, or a send blocked for SEND_TIMEOUT_SECONDS (10;
checked every second by the process's flaggery.stream.send_watch.SendWatch).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.engine.model import Change
from flaggery.errors import RevisionNotReached
from flaggery.http.codec import NoQuery
from flaggery.http.endpoint import REVISION_HEADER, Call, Operation, Services
from flaggery.http.errors import RequestValidationError
from flaggery.store.audit_trail import read_change_range
from flaggery.stream.follow import follow
from flaggery.stream.sse import event_source

__all__ = ["OPERATIONS", "STALE_HEADER", "STREAM_PATH"]

STREAM_PATH = "/v1/stream"
STALE_HEADER = "X-Flaggery-Stale"


async def _stream(request: Request) -> Response:
    services: Services = request.app.state.services
    services.require_snapshot()
    await services.await_revision(request.headers)
    last_id = _last_event_id(request.headers.get("last-event-id"))

    store = services.store_or_none

    async def replay(after: int, upto: int) -> Sequence[Change] | None:
        assert store is not None
        return await read_change_range(store.database, after, upto)

    # An edge has no change log: beyond its in-memory backlog a resume is a reload.
    response = event_source(
        follow(services.broadcast, last_id, None if store is None else replay),
        services.settings.stream_keepalive,
        services.send_watch,
    )
    response.headers[REVISION_HEADER] = str(services.evaluator.revision)
    response.headers[STALE_HEADER] = "true" if services.evaluator.stale else "false"
    return response


def _last_event_id(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None  # EventSource sends an empty id when it has none yet
    try:
        return parse_decimal(text.strip(), "Last-Event-ID (a revision)")
    except DecimalTextError as error:
        raise RequestValidationError(str(error)) from None


async def stream(call: Call[NoQuery, None]) -> bytes:
    """The OpenAPI operation id of GET /v1/stream; `_stream` answers it."""
    raise NotImplementedError  # never called: the operation is raw


OPERATIONS = (
    Operation("GET", STREAM_PATH, stream, None, "The change stream (Server-Sent Events)",
              "replication", replica=True, raw=_stream, media_type="text/event-stream",
              errors=(RevisionNotReached,),
              description="One event per revision: id = revision, event = change | reload, "
              "data = JSON; event = schedule (same id) when an A/B test starts or ends on its "
              "schedule. X-Flaggery-Revision: the server's revision at the start. Resume with "
              "the Last-Event-ID header. Reader role."),
)  # fmt: skip
