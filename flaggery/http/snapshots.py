"""GET /v1/snapshot: this process's whole resolution state at one revision, in the portable
format (flaggery.engine.state_codec), for replicas that follow GET /v1/stream. Reader role;
read-only servers serve it. The revision is in X-Flaggery-Revision; resume the stream after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from flaggery.engine.model import State
from flaggery.engine.state_codec import state_chunks
from flaggery.errors import RevisionNotReached
from flaggery.http.codec import NoQuery
from flaggery.http.endpoint import REVISION_HEADER, Call, Operation, Services

__all__ = ["MEDIA_TYPE", "OPERATIONS", "SNAPSHOT_PATH"]

SNAPSHOT_PATH = "/v1/snapshot"
MEDIA_TYPE = "application/vnd.flaggery.snapshot"


async def _snapshot(request: Request) -> Response:
    services: Services = request.app.state.services
    services.require_snapshot()
    await services.await_revision(request.headers)
    snapshot = services.evaluator.snapshot  # read once: the whole answer is this revision
    # Gathering the columns of a million subjects takes a few hundred ms: not on the loop.
    state = await asyncio.to_thread(snapshot.to_state)
    headers = {REVISION_HEADER: str(state.revision), "Cache-Control": "no-store"}
    return StreamingResponse(_chunks(state), media_type=MEDIA_TYPE, headers=headers)


async def _chunks(state: State) -> AsyncIterator[bytes | memoryview]:
    for chunk in state_chunks(state):
        yield chunk


async def snapshot(call: Call[NoQuery, None]) -> bytes:
    """The OpenAPI operation id of GET /v1/snapshot; `_snapshot` answers it."""
    raise NotImplementedError  # never called: the operation is raw


OPERATIONS = (
    Operation("GET", SNAPSHOT_PATH, snapshot, None, "The whole state at one revision",
              "replication", replica=True, raw=_snapshot, media_type=MEDIA_TYPE,
              errors=(RevisionNotReached,),
              description="Portable binary format (docs/rest-api.md); the "
              "revision is in X-Flaggery-Revision. Reader role."),
)  # fmt: skip
