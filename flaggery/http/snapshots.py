"""GET /v1/snapshot: this process's whole resolution state at one revision, in the portable
format (flaggery.live.portable), for replicas that follow GET /v1/stream. Reader role;
read-only servers serve it. The revision is in X-Flaggery-Revision; resume the stream after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from flaggery.engine.model import State
from flaggery.http.auth import AdminGuard
from flaggery.http.endpoint import REVISION_HEADER, Services
from flaggery.live.portable import portable_chunks
from flaggery.settings import Settings
from flaggery.tokens import Role

__all__ = ["MEDIA_TYPE", "SNAPSHOT_PATH", "route"]

SNAPSHOT_PATH = "/v1/snapshot"
MEDIA_TYPE = "application/vnd.flaggery.snapshot"


def route(settings: Settings) -> Route:
    """The snapshot's route, guarded for the reader role and served by read-only servers."""
    roles = {"GET": Role.READER, "HEAD": Role.READER}
    middleware = [Middleware(AdminGuard, settings=settings, roles=roles, admin_only=())]
    return Route(SNAPSHOT_PATH, _snapshot, methods=["GET"], name="snapshot", middleware=middleware)


async def _snapshot(request: Request) -> StreamingResponse:
    services: Services = request.app.state.services
    services.require_snapshot()
    await services.await_revision(request.headers)
    snapshot = services.evaluator.snapshot  # read once: the whole answer is this revision
    # Gathering the columns of a million subjects takes a few hundred ms: not on the loop.
    state = await asyncio.to_thread(snapshot.to_state)
    headers = {REVISION_HEADER: str(state.revision), "Cache-Control": "no-store"}
    return StreamingResponse(_chunks(state), media_type=MEDIA_TYPE, headers=headers)


async def _chunks(state: State) -> AsyncIterator[bytes | memoryview]:
    for chunk in portable_chunks(state):
        yield chunk
