"""The upstream feed: follow another flaggery server instead of a database (an edge replica).

Load GET /v1/snapshot (the portable state), then follow GET /v1/stream from its revision:
``change`` events are patched onto the snapshot, ``reload`` events (and a change that does
not continue it) load the snapshot again. A dropped stream is resumed with Last-Event-ID after
the shared jittered backoff (flaggery.live.backoff), or the slow one after a refused token;
meanwhile the last snapshot is served, marked stale. A failure is logged when it starts or its
reason changes, and its end once (flaggery.live.failure_log). The upstream may itself be an
edge: replicas form a tree.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import msgspec

from flaggery.engine import ChangeGap
from flaggery.engine.model import Change
from flaggery.engine.state_codec import decode_state
from flaggery.errors import UpstreamRefused, UpstreamUnavailable
from flaggery.live.backoff import RECONNECT, REFUSED
from flaggery.live.failure_log import FailureLog, level_of
from flaggery.live.sse_lines import bounded_lines, sse_events
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.replica import Replica

__all__ = ["READ_TIMEOUT_SECONDS", "UpstreamFeed"]

log = logging.getLogger("flaggery.live")

READ_TIMEOUT_SECONDS = 60.0
"""Silence longer than this means the upstream is gone (it sends keep-alives every 15 s)."""
_change_decoder = msgspec.json.Decoder(Change)


class UpstreamFeed:
    def __init__(self, url: str, token: str | None, replica: Replica) -> None:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_SECONDS)
        self._client = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)
        self._url = url
        self._replica = replica
        self._task: asyncio.Task[None] | None = None
        self._failures = FailureLog(log)

    async def start(self) -> None:
        """Load the upstream's snapshot, then follow its stream in the background. Raises
        UpstreamUnavailable if the upstream cannot be reached or answers an error,
        UpstreamRefused (a subclass) if it refuses the token."""
        await self._load("first load from upstream")
        self._task = asyncio.create_task(self._follow_forever(), name="flaggery-upstream")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self._client.aclose()

    async def _load(self, reason: str) -> None:
        try:
            body = await self._snapshot_bytes()
        except httpx.HTTPError as error:
            self._replica.count_failure()
            raise self._unreachable(error) from error
        state = await asyncio.to_thread(decode_state, body)
        del body  # 24 bytes a subject: gone before the snapshot is built
        await self._replica.install(state, reason)

    async def _snapshot_bytes(self) -> bytearray:
        """GET /v1/snapshot's body in one growing buffer. Collecting httpx's small chunks
        instead left ten million subjects' 240 MB scattered over the heap, where the
        allocator kept them after they were freed (an edge held 568 MiB instead of ~200)."""
        async with self._client.stream("GET", "/v1/snapshot") as response:
            if response.status_code != 200:
                await response.aread()
                _check(response, self._url)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
        return body

    async def _follow_forever(self) -> None:
        delays = RECONNECT.delays()
        while True:
            try:
                await self._follow()
                delays = RECONNECT.delays()  # it worked for a while: start the schedule over
            except (httpx.HTTPError, UpstreamUnavailable, ValueError) as error:
                self._replica.mark_disconnected()
                self._failures.failed(
                    f"{type(error).__name__}: {error}",
                    "Lost the upstream %s (%s); serving revision %s, stale",
                    self._url, error, self._replica.revision,
                    level=level_of(error),
                )  # fmt: skip
                if isinstance(error, UpstreamRefused):
                    delays = REFUSED.delays()
            await asyncio.sleep(next(delays))

    async def _follow(self) -> None:
        if self._replica.head is None:  # restored from a file: the upstream's whole state
            await self._load("reconnected to upstream")
        resume = {"Last-Event-ID": str(self._replica.revision)}
        async with self._client.stream("GET", "/v1/stream", headers=resume) as response:
            if response.status_code != 200:
                await response.aread()
                _check(response, self._url)
            self._replica.mark_current()
            self._failures.recovered(
                "Following the upstream %s again from revision %s", self._url,
                self._replica.revision,
            )  # fmt: skip
            async for event in sse_events(bounded_lines(response.aiter_bytes())):
                await self._apply(event.event, "\n".join(event.data))
                self._replica.mark_current()

    async def _apply(self, kind: str, data: str) -> None:
        if kind != "change":
            await self._load(f"upstream said reload: {data}")
            return
        try:
            await self._replica.patch([_change_decoder.decode(data)])
        except ChangeGap as gap:
            await self._load(f"upstream change does not continue this snapshot ({gap})")

    def _unreachable(self, error: Exception) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"The upstream {self._url} is unreachable ({error}).")


def _check(response: httpx.Response, url: str) -> None:
    if response.status_code in (401, 403):
        if "authorization" not in response.request.headers:
            problem = "no token was sent"
        elif response.status_code == 401:
            problem = "the token is not one of its tokens"
        else:
            problem = "the token's role is too low"
        raise UpstreamRefused(
            f"The upstream {url} refused this edge ({response.status_code}: {problem}). Set "
            "FLAGGERY_UPSTREAM_TOKEN (token= for Evaluator.from_upstream) to a reader token "
            "of the upstream."
        )
    if response.status_code != 200:
        raise UpstreamUnavailable(
            f"The upstream {url} answered {response.status_code} to "
            f"{response.request.url.path}: {response.text[:200]}"
        )
