"""Delivering webhooks: the admin process reads the change log after each subscription's
cursor and POSTs every revision its filter keeps, oldest first, one at a time.

Never from the write path: a write commits and is answered without waiting for any receiver;
this loop wakes on the process's snapshot swaps (and every `POLL_SECONDS` regardless, for the
writes of other admin processes). The guarantees:

- **At least once, in order.** The cursor moves past a revision only after its receiver
  answered 2xx; a failure stops the subscription at that revision, which is retried until it
  succeeds. A crash between the answer and the cursor's move sends it again: receivers
  deduplicate on ``Idempotency-Key`` (the revision).
- **Retries** wait the existing jittered exponential backoff (flaggery.live.backoff, here
  `RETRY`); after FLAGGERY_WEBHOOK_FAILING_AFTER seconds of failures the subscription is
  marked failing (dashboard, /v1/webhooks, the ``flaggery_webhook_failing`` metric) and is
  still retried at the backoff's cap, so nothing is dropped; a success clears it.
- **One deliverer per subscription.** Several admin processes share the work through a lease
  on the subscription's row (flaggery.store.webhooks.claim).
- **SSRF.** The host is resolved and checked before every delivery, and the request goes to
  the address checked (flaggery.store.webhook_targets), following no redirect.
- A revision the change log no longer holds (retention pruned it before it was delivered) is
  skipped, with a warning in the log.
- An idle round costs two reads: a subscription with nothing after its cursor is not leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import msgspec

from flaggery.clock import Clock, utc_now
from flaggery.engine.model import Fact
from flaggery.errors import WebhookTargetRefused
from flaggery.hooks.signing import SIGNATURE_HEADER, sign
from flaggery.live.backoff import Backoff
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.audit_trail import ChangeRecord, read_changes
from flaggery.store.database import Database
from flaggery.store.operation_names import operation_word
from flaggery.store.webhook_targets import TargetPolicy, resolve
from flaggery.store.webhooks import Subscription, advance, claim, record_failure, subscriptions

__all__ = ["POLL_SECONDS", "RETRY", "Deliverer", "Delivery"]

log = logging.getLogger(__name__)

RETRY = Backoff(first=1.0, cap=60.0)
"""A receiver that is down is retried within a second, then less and less often, at least
once a minute."""
POLL_SECONDS = 1.0
PAGE = 100
LEASE_SECONDS = 60.0
TIMEOUT_SECONDS = 10.0
STOP_SECONDS = 2.0


class Delivery(msgspec.Struct, frozen=True):
    """The JSON body of one delivery: one revision (one write) of the change log."""

    webhook: str
    revision: int
    at: datetime
    actor: str | None
    operation: str
    facts: tuple[Fact, ...]


class _Failed(Exception):
    """A delivery that did not get a 2xx answer; the message says why."""


class Deliverer:
    """Delivers every subscription of ``db`` (see the module). `run_round` does one pass;
    `run_forever` repeats it. ``client``: tests pass one with their own transport."""

    def __init__(  # noqa: PLR0913 - the options of one background task, keyword-only
        self,
        db: Database,
        *,
        policy: TargetPolicy,
        failing_after: float,
        clock: Clock = utc_now,
        retry: Backoff = RETRY,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.failing_after = failing_after
        self.clock = clock
        self.retry = retry
        self.owner = uuid.uuid4().hex
        self.client = client or httpx.AsyncClient(
            follow_redirects=False, timeout=TIMEOUT_SECONDS, trust_env=False
        )
        self.failing: dict[str, bool] = {}
        """Each subscription's failing state as of the last round (the metric's source)."""
        self._waits: dict[str, Iterator[float]] = {}
        self._retry_at: dict[str, datetime] = {}
        self.wake = asyncio.Event()
        self._stopping = False

    async def stop(self, task: asyncio.Task[None]) -> None:
        """End `run_forever` running as ``task``: after its current round (a database call
        cancelled half-way leaves SQLite's worker thread calling a closed loop), or cancelled
        after STOP_SECONDS (a receiver that does not answer)."""
        self._stopping = True
        self.wake.set()
        done, _ = await asyncio.wait([task], timeout=STOP_SECONDS)
        if not done:
            await cancel_and_wait(task)

    async def close(self) -> None:
        await self.client.aclose()

    async def run_forever(self) -> None:
        """A round on every wake-up (a snapshot swap) and every POLL_SECONDS, until `stop`; a
        round that fails (the database is down) is logged and retried on the next."""
        while not self._stopping:
            self.wake.clear()
            try:
                await self.run_round()
            except Exception as error:
                log.warning("Delivering webhooks failed (retrying): %s", error)
            # asyncio.timeout, not wait_for: flaggery.live.tasks says why.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self.wake.wait()

    async def run_round(self) -> None:
        """Deliver what is pending to every subscription not waiting for a retry and whose
        lease this process holds."""
        found = await subscriptions(self.db)
        self.failing = {s.record.name: s.record.failing for s in found}
        for name in set(self._retry_at) - set(self.failing):
            self._forget(name)
        if not found:
            return  # a round runs at every write: no webhooks, no second read
        head = await self.db.revision()
        for subscription in found:
            name = subscription.record.name
            now = self.clock()
            if subscription.record.delivered >= head or self._retry_at.get(name, now) > now:
                continue
            if not await claim(self.db, name, self.owner, now, LEASE_SECONDS):
                continue
            try:
                await self._deliver_pending(subscription)
            except _Failed as failure:
                await self._failed(name, str(failure))
            else:
                self._forget(name)

    def _forget(self, name: str) -> None:
        self._waits.pop(name, None)
        self._retry_at.pop(name, None)

    async def _failed(self, name: str, error: str) -> None:
        now = self.clock()
        wait = next(self._waits.setdefault(name, self.retry.delays()))
        self._retry_at[name] = now + timedelta(seconds=wait)
        await record_failure(self.db, name, now, error, self.failing_after)
        log.info("Webhook %r failed (retry in %.1f s): %s", name, wait, error)

    async def _deliver_pending(self, subscription: Subscription) -> None:
        record = subscription.record
        cursor = record.delivered
        while True:
            page = await read_changes(self.db, cursor, PAGE, subscription.filter)
            if page.gone:
                log.warning("Webhook %r: revisions after %s were pruned", record.name, cursor)
            for change in page.changes:
                if record.operation not in (None, operation_word(change.operation)):
                    continue
                await self._post(subscription, change)
                if not await advance(self.db, record.name, cursor, change.revision):
                    return  # replayed or removed meanwhile: the next round starts over
                cursor = change.revision
            if page.next_after > cursor:
                if not await advance(self.db, record.name, cursor, page.next_after):
                    return
                cursor = page.next_after
            if cursor >= page.head:
                return

    async def _post(self, subscription: Subscription, change: ChangeRecord) -> None:
        name = subscription.record.name
        try:
            target = await resolve(subscription.record.url, self.policy)
        except WebhookTargetRefused as refused:
            raise _Failed(str(refused)) from None
        body = msgspec.json.encode(
            Delivery(name, change.revision, change.at, change.actor, change.operation, change.facts)
        )
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Host": target.url.netloc.rpartition("@")[2],
            "Idempotency-Key": str(change.revision),
            "X-Flaggery-Webhook": name,
            SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
        }
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        try:
            response = await self.client.post(
                target.pinned_url, content=body, headers=headers, extensions=extensions
            )
        except httpx.HTTPError as error:
            raise _Failed(f"revision {change.revision}: {type(error).__name__}: {error}") from None
        if not 200 <= response.status_code < 300:
            raise _Failed(
                f"revision {change.revision}: HTTP {response.status_code} "
                "(only 2xx counts; redirects are not followed)"
            )
