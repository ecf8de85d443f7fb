"""GET /v1/snapshot: this process's whole resolution state at one revision, in the portable
format (flaggery.engine.state_codec), for replicas that follow GET /v1/stream. Reader role;
read-only servers serve it. The revision is in X-Flaggery-Revision; resume the stream after it.
Downloads share one copy of the state and end when their client stops reading
(flaggery.http.downloads).
"""

from __future__ import annotations

from starlette.requests import Request

from flaggery.errors import RevisionNotReached
from flaggery.http.codec import NoQuery
from flaggery.http.downloads import SnapshotDownload
from flaggery.http.endpoint import REVISION_HEADER, Call, Operation, Services

__all__ = ["MEDIA_TYPE", "OPERATIONS", "SNAPSHOT_PATH"]

SNAPSHOT_PATH = "/v1/snapshot"
MEDIA_TYPE = "application/vnd.flaggery.snapshot"


async def _snapshot(request: Request) -> SnapshotDownload:
    services: Services = request.app.state.services
    services.require_snapshot()
    await services.await_revision(request.headers)
    snapshot = services.evaluator.snapshot  # read once: the whole answer is this revision
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (REVISION_HEADER.lower().encode(), b"%d" % snapshot.revision),
        (b"cache-control", b"no-store"),
    ]
    return SnapshotDownload(services.downloads, snapshot, headers)


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
