"""The upstream feed: follow another flaggery server instead of a database (an edge replica).

Load GET /v1/snapshot (the portable state), then follow GET /v1/stream from its revision:
``change`` events are patched onto the snapshot, ``reload`` events (and a change that does
not continue it, or does not apply) load the snapshot again; other event types are ignored.
A snapshot that does not build keeps the last good one, stale with ``build_error``, and the
stream followed, so the next event tries again. Staleness tells the truth: the edge is current
only while a stream is open and it has reached the newest revision the upstream announced
(the stream's X-Flaggery-Revision header, the events' ids), and the upstream is not stale
itself (X-Flaggery-Stale, ``freshness`` events). A dropped stream is resumed with
Last-Event-ID after the shared jittered backoff (flaggery.live.backoff), which starts over
only after a stream that sent something (a proxy that answers 200 and closes at once is a
failure), or the slow one after a refused token or a snapshot that did not build; meanwhile
the last snapshot is served, marked stale. A failure is logged when it starts or its reason
changes, and its end once (flaggery.live.failure_log). The upstream may itself be an edge:
replicas form a tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import msgspec

from flaggery.engine import ChangeGap
from flaggery.engine.model import Change
from flaggery.engine.state_codec import decode_state
from flaggery.errors import UpstreamRefused, UpstreamUnavailable
from flaggery.live.backoff import RECONNECT, REFUSED, lasting, stream_worked
from flaggery.live.failure_log import FailureLog, level_of
from flaggery.live.sse_lines import bounded_lines, sse_events
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.replica import Replica, SnapshotBuildFailed

__all__ = ["READ_TIMEOUT_SECONDS", "UpstreamFeed"]

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 60.0
"""Silence longer than this means the upstream is gone (it sends keep-alives every 15 s)."""
REVISION_HEADER = "x-flaggery-revision"
"""On GET /v1/stream: the upstream's revision when the stream starts."""
STALE_HEADER = "x-flaggery-stale"
"""On GET /v1/stream: ``true`` when the upstream's own answers may lag its source."""


class _Freshness(msgspec.Struct):
    """A ``freshness`` event's data (flaggery.stream.events.FreshnessData; other fields
    ignored)."""

    stale: bool


_freshness_decoder = msgspec.json.Decoder(_Freshness)
_change_decoder = msgspec.json.Decoder(Change)
_EXPECTED = (httpx.HTTPError, UpstreamUnavailable, ValueError, SnapshotBuildFailed)
"""Failures logged without a traceback: the network, the upstream's answers, its data."""


class UpstreamFeed:
    def __init__(self, url: str, token: str | None, replica: Replica) -> None:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_SECONDS)
        self._client = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)
        self._url = url
        self._replica = replica
        self._task: asyncio.Task[None] | None = None
        self._failures = FailureLog(log)
        self._first_line: float | None = None
        self._short_streams = 0
        """Streams in a row that did not work (`stream_worked`)."""

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
        """Download, decode and install the upstream's snapshot. Raises UpstreamUnavailable
        (UpstreamRefused), ValueError (not a snapshot) or SnapshotBuildFailed."""
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
        # Nothing but cancellation ends this loop: it is the edge's only way back to current.
        delays = RECONNECT.delays()
        while True:
            try:
                worked = await self._follow()
            except Exception as error:
                self._lost(error)
                if lasting(error):
                    delays = REFUSED.delays()  # only a change on the upstream's side helps
            else:
                self._replica.mark_disconnected()
                self._short_streams = 0 if worked else self._short_streams + 1
                if worked:
                    delays = RECONNECT.delays()  # it worked for a while: start over
                elif self._short_streams == 1:  # once per run of them, not once per attempt
                    log.warning(
                        "The upstream %s ended its stream at once, without an event (a proxy "
                        "in between?); serving revision %s, stale, and backing off",
                        self._url, self._replica.revision,
                    )  # fmt: skip
            await asyncio.sleep(next(delays))
            self._replica.counts.reconnects += 1

    def _lost(self, error: Exception) -> None:
        self._replica.mark_disconnected()
        self._failures.failed(
            f"{type(error).__name__}: {error}",
            "Lost the upstream %s (%s); serving revision %s, stale",
            self._url, error, self._replica.revision,
            level=level_of(error),
            exc_info=not isinstance(error, _EXPECTED),
        )  # fmt: skip

    async def _follow(self) -> bool:
        """Follow the stream until it ends. Returns whether it worked (`stream_worked`)."""
        if self._replica.head is None:  # restored from a file: the upstream's whole state
            await self._load("reconnected to upstream")
        resume = {"Last-Event-ID": str(self._replica.revision)}
        self._first_line = None
        events = 0
        async with self._client.stream("GET", "/v1/stream", headers=resume) as response:
            if response.status_code != 200:
                await response.aread()
                _check(response, self._url)
            announced = _revision(response.headers.get(REVISION_HEADER))
            if announced is not None:  # the upstream's revision: current only once reached
                self._replica.saw_source_revision(announced)
            self._replica.saw_source_staleness(response.headers.get(STALE_HEADER) == "true")
            lines = self._received(bounded_lines(response.aiter_bytes()))
            async for event in sse_events(lines):
                events += 1
                await self._apply(event.event, "\n".join(event.data))
                revision = _revision(event.id)
                if revision is not None:
                    self._replica.saw_source_revision(revision)
                self._replica.mark_current()
        opened = self._first_line
        return stream_worked(events, None if opened is None else time.monotonic() - opened)

    async def _received(self, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        """``lines``, noting the first (the server's opening comment, or any line): only a
        stream that sends something is connected."""
        async for line in lines:
            if self._first_line is None:
                self._first_line = time.monotonic()
                self._connected()
            yield line

    def _connected(self) -> None:
        self._replica.mark_current()
        self._failures.recovered(
            "Following the upstream %s again from revision %s", self._url,
            self._replica.revision,
        )  # fmt: skip

    async def _apply(self, kind: str, data: str) -> None:
        if kind == "reload":
            await self._reload(f"upstream said reload: {data}")
        elif kind == "freshness":
            try:
                stale = _freshness_decoder.decode(data).stale
            except msgspec.DecodeError:
                log.debug("Ignoring a freshness event that does not decode: %r", data[:100])
            else:
                self._replica.saw_source_staleness(stale)
        elif kind == "change":
            try:
                await self._replica.patch([_change_decoder.decode(data)])
            except ChangeGap as gap:
                await self._reload(f"upstream change does not continue this snapshot ({gap})")
            except Exception as error:
                log.warning("An upstream change did not apply: %r", error, exc_info=True)
                await self._reload(f"upstream change did not apply ({error!r})")
        else:
            # A newer upstream's event (and `schedule`: this replica has its own A/B timer).
            log.debug("Ignoring a %r event from the upstream", kind)

    async def _reload(self, reason: str) -> None:
        """Load the upstream's snapshot; one that does not build keeps the last good one
        (stale, with ``build_error``) and the stream followed: a later event loads again."""
        with contextlib.suppress(SnapshotBuildFailed):  # logged by the replica, once
            await self._load(reason)

    def _unreachable(self, error: Exception) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"The upstream {self._url} is unreachable ({error}).")


def _revision(text: str | None) -> int | None:
    """A revision from the upstream's text (an event id, a header); None if it is not one."""
    if text is None or not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    return int(text)


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
