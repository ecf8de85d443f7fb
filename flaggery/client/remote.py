"""AsyncFlaggeryClient: a subject's flags from GET /v1/subjects/{id}/flags, and any targeting
key's from GET /v1/keys/{key}/flags, cached.

Two caches of one answer per subject or key, both bounded (least recently used out when full):
the fresh one (flaggery.client.fresh, every entry out after its TTL) answers without a request;
the last-known one (cachetools.LRUCache) is the fallback. With ``follow=True`` (and a reader
token where the server requires one) a background task follows GET /v1/stream: a revision that
touches only subjects drops those subjects' fresh answers (and the keys that are their decimal
ids: such a key now names the subject, or no longer does); any other revision, a reload, an
A/B test starting or ending on its schedule, and every (re)connection (resumed with
Last-Event-ID) drop them all; event types it does not know are ignored. A request in flight
when its answer is dropped is answered but not cached, so a fresh answer is at most one
stream hop old. A stream that ends at once without an event does not restart the reconnect
backoff (flaggery.live.backoff.stream_worked). On a server error, an unreachable server, or a
200 whose body is not flags JSON (a captive portal, a proxy's page), the last-known answer is
served, marked ``stale`` with the reason; without one, ServerUnavailable is raised. A 4xx
raises the server's error type (SubjectNotFound, ...) from flaggery.errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import TracebackType
from urllib.parse import quote

import httpx
import msgspec
from cachetools import LRUCache

from flaggery import errors
from flaggery.client.exposures import ExposureSender
from flaggery.client.fresh import FreshAnswers, Unit
from flaggery.engine.model import Change
from flaggery.engine.targeting import check_targeting_key
from flaggery.engine.touches import touched
from flaggery.live.backoff import RECONNECT, stream_worked
from flaggery.live.sse_lines import EventTooLarge, bounded_lines, sse_events
from flaggery.live.tasks import cancel_and_wait

__all__ = ["AsyncFlaggeryClient", "ContextValue", "FlagsAnswer", "ServerUnavailable"]

ContextValue = str | int | float | bool
"""An evaluation-context attribute's value as the client sends it (as text)."""

log = logging.getLogger(__name__)


class ServerUnavailable(errors.FlaggeryError):
    """The server could not answer (unreachable, or a 5xx) and nothing was cached."""


class FlagsAnswer(msgspec.Struct, frozen=True):
    flags: dict[str, str]
    """{feature: variant}."""
    stale: bool = False
    """True when served from the cache because the server failed; `reason` says how."""
    reason: str | None = None


class _Flags(msgspec.Struct):
    flags: dict[str, str]


class _Envelope(msgspec.Struct):
    exception: dict[str, str]


_flags_decoder = msgspec.json.Decoder(_Flags)
_change_decoder = msgspec.json.Decoder(Change)


class AsyncFlaggeryClient:
    def __init__(  # noqa: PLR0913 - keyword-only options, as httpx.Client's
        self,
        url: str,
        *,
        token: str | None = None,
        cache_size: int = 10_000,
        cache_ttl: float = 30.0,
        follow: bool = True,
        timeout: float = 5.0,
    ) -> None:
        """A client of the server at ``url``. ``cache_size`` subjects are kept for at most
        ``cache_ttl`` seconds (and as many last-known answers for outages); ``follow``
        invalidates them from the stream (start it with ``async with`` or `start`).
        ``timeout``: seconds per request."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)
        self._fresh = FreshAnswers(cache_size, cache_ttl)
        # Answers for a key with a context, apart: a change to any subject drops them all
        # (the context may name a subject to bucket by), not only the changed ids' answers.
        self._fresh_in_context = FreshAnswers(cache_size, cache_ttl)
        self._known: LRUCache[Unit, dict[str, str]] = LRUCache(cache_size)
        self._follow = follow
        self._task: asyncio.Task[None] | None = None
        self.exposures = ExposureSender(self._http)
        """Exposures recorded with `record_exposure`, sent in batches of 100 every second."""
        self._sender: asyncio.Task[None] | None = None
        self._first_line: float | None = None
        self.revision: int | None = None
        """The last revision the stream reported (None before any)."""

    async def start(self) -> None:
        if self._follow and self._task is None:
            self._task = asyncio.create_task(self._follow_forever(), name="flaggery-client")
        if self._sender is None:
            self._sender = asyncio.create_task(self.exposures.run(), name="flaggery-exposures")

    async def close(self) -> None:
        await cancel_and_wait(self._task, self._sender)
        self._task = self._sender = None
        await self.exposures.flush()
        await self._http.aclose()

    def record_exposure(
        self, key: str, test: str, group: str, when: datetime | None = None
    ) -> None:
        """Record that targeting key `key` (a subject's decimal id, or any key) was shown
        `group` of A/B `test` at `when` (now if None): sent with the next batch to
        POST /v1/exposures (ExposureSender), in the background once started."""
        self.exposures.record(key, test, group, when)

    async def __aenter__(self) -> AsyncFlaggeryClient:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def flags(self, subject_id: int) -> FlagsAnswer:
        """The subject's flags: from the cache, else one request. Raises SubjectNotFound (and
        the other flaggery.errors types for 4xx), ServerUnavailable (no cached answer)."""
        return await self._answer(subject_id, f"/v1/subjects/{subject_id}/flags")

    async def key_flags(
        self, key: str, context: Mapping[str, ContextValue] | None = None
    ) -> FlagsAnswer:
        """Any targeting key's flags (a registered subject's canonical id is that subject;
        any other key is hashed on the server), with the evaluation ``context`` for targeting
        rules (attribute -> str, int, float or bool; sent as the route's ``context.NAME=VALUE``
        parameters, as text: booleans ``true``/``false``): from the cache, else one request.
        Answers are cached per key and context. Raises InvalidTargetingKey (checked here,
        before any request), InvalidInput for a context value of another type,
        ServerUnavailable."""
        path = f"/v1/keys/{quote(check_targeting_key(key), safe='')}/flags"
        parameters = _context_parameters(context)
        if not parameters:
            return await self._answer(key, path)
        return await self._answer((key, parameters), path, self._fresh_in_context)

    async def _answer(
        self, unit: Unit, path: str, fresh: FreshAnswers | None = None
    ) -> FlagsAnswer:
        if fresh is None:
            fresh = self._fresh
        cached = fresh.get(unit)
        if cached is not None:
            return FlagsAnswer(cached)
        parameters = unit[1] if isinstance(unit, tuple) else ()
        with fresh.fetching(unit) as fetch:
            try:
                response = await self._http.get(path, params=parameters)
            except httpx.HTTPError as error:
                return self._fallback(unit, f"the server is unreachable ({error!r})")
            if response.status_code >= 500:
                return self._fallback(unit, f"the server answered {response.status_code}")
            if response.status_code != 200:
                raise _typed_error(response)
            try:
                flags = _flags_decoder.decode(response.content).flags
            except msgspec.DecodeError as error:
                reason = f"the server answered 200 with a body that is not flags JSON ({error})"
                return self._fallback(unit, reason)
            fetch.store(flags)
            self._known[unit] = flags
        return FlagsAnswer(flags)

    async def variants(self, subject_id: int) -> dict[str, str]:
        """{feature: variant} for the subject (see `flags` for the errors)."""
        return (await self.flags(subject_id)).flags

    async def variant(self, subject_id: int, feature: str) -> str | None:
        """The subject's variant of ``feature``, or None (see `flags` for the errors)."""
        return (await self.flags(subject_id)).flags.get(feature)

    def _fallback(self, unit: Unit, reason: str) -> FlagsAnswer:
        cached = self._known.get(unit)
        if isinstance(unit, tuple):
            name = f"key {unit[0]!r:.80} in its context"
        else:
            name = f"subject {unit}" if isinstance(unit, int) else f"key {unit!r:.80}"
        if cached is None:
            raise ServerUnavailable(f"No answer for {name}: {reason}.")
        log.warning("Serving cached flags for %s: %s", name, reason)
        return FlagsAnswer(cached, stale=True, reason=reason)

    async def _follow_forever(self) -> None:
        # Nothing but cancellation ends this loop: without it the cache expires by TTL only.
        delays = RECONNECT.delays()
        while True:
            try:
                if await self._follow_stream():
                    delays = RECONNECT.delays()  # it worked: start the schedule over
                else:
                    log.warning("The flaggery stream ended at once, without an event")
            except Exception as error:
                log.warning(
                    "Lost the flaggery stream (%r); the cache expires by TTL", error,
                    exc_info=not isinstance(error, httpx.HTTPError | EventTooLarge),
                )  # fmt: skip
            self._fresh.drop_all()  # changes while disconnected are unknown
            self._fresh_in_context.drop_all()
            await asyncio.sleep(next(delays))

    async def _follow_stream(self) -> bool:
        """Follow the stream until it ends; whether it worked (`stream_worked`)."""
        self._first_line = None
        events = 0
        # Resumed after the last revision seen: what was published while the server took the
        # new stream's subscription is replayed, not lost.
        resume = {} if self.revision is None else {"Last-Event-ID": str(self.revision)}
        timeout = httpx.Timeout(5.0, read=60.0)
        async with self._http.stream(
            "GET", "/v1/stream", headers=resume, timeout=timeout
        ) as response:
            response.raise_for_status()
            self._fresh.drop_all()  # answers fetched before the stream opened may be stale
            self._fresh_in_context.drop_all()
            async for event in sse_events(self._received(bounded_lines(response.aiter_bytes()))):
                events += 1
                self._invalidate(event.event, "\n".join(event.data))
                with contextlib.suppress(ValueError, TypeError):
                    self.revision = int(event.id or "")
        opened = self._first_line
        return stream_worked(events, None if opened is None else time.monotonic() - opened)

    async def _received(self, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            if self._first_line is None:
                self._first_line = time.monotonic()
            yield line

    def _invalidate(self, kind: str, data: str) -> None:
        if kind == "change":
            try:
                touches = [touched(fact) for fact in _change_decoder.decode(data).facts]
            except msgspec.DecodeError:
                touches = []  # not understood: anything may have changed
            # Only subjects changed: only their cached answers are stale, and the keys that
            # are their decimal ids (such a key now names the subject, or no longer does).
            if touches and not any(
                t.everything or t.features or t.groups or t.tests for t in touches
            ):
                for subject_id in {s for touch in touches for s in touch.subjects}:
                    self._fresh.drop(subject_id)
                    self._fresh.drop(str(subject_id))
                self._fresh_in_context.drop_all()
                return
        elif kind not in ("reload", "schedule"):
            return  # a newer server's event type
        self._fresh.drop_all()
        self._fresh_in_context.drop_all()


def _context_parameters(
    context: Mapping[str, ContextValue] | None,
) -> tuple[tuple[str, str], ...]:
    """The ``context.NAME=VALUE`` parameters of a context, sorted: also its cache key."""
    if not context:
        return ()
    parameters = []
    for name, value in context.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise errors.ValidationError(
                f"Context attribute {name!r:.80} is {type(value).__name__}: "
                "a context value is a str, int, float or bool."
            )
        parameters.append((f"context.{name}", text))
    return tuple(sorted(parameters))


def _typed_error(response: httpx.Response) -> errors.FlaggeryError:
    try:
        body = msgspec.json.decode(response.content, type=_Envelope).exception
    except msgspec.DecodeError:
        return errors.FlaggeryError(f"The server answered {response.status_code}.")
    kind = getattr(errors, body.get("name", ""), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.FlaggeryError)):
        kind = errors.FlaggeryError
    return kind(body.get("message", ""))
