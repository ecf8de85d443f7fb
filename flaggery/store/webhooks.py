"""Webhook subscriptions: a URL, a filter and a secret, with a cursor into the change log.

A subscription is configuration, not flag state: creating one writes no revision. Its cursor
(``delivered``) is the last revision handled: delivered, or skipped because the filter does
not keep it. The admin process (flaggery.hooks.sending) moves the cursor only after the
receiver acknowledged the revision, with a compare-and-set, so a replay asked meanwhile wins
and nothing is skipped: at least once, in revision order. A lease on the row lets one admin
process at a time deliver a subscription when several run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from flaggery.errors import ValidationError, WebhookExists, WebhookNotFound
from flaggery.store import tables as t
from flaggery.store.audit_trail import ChangeFilter
from flaggery.store.database import Database
from flaggery.store.operation_names import WRITE_OPERATIONS
from flaggery.store.validation import MAX_SUBJECT_ID, check_name, storable
from flaggery.store.webhook_targets import TargetPolicy, resolve

__all__ = [
    "MIN_SECRET_LENGTH",
    "Subscription",
    "WebhookRecord",
    "WebhooksAdmin",
    "advance",
    "claim",
    "record_failure",
    "subscriptions",
]

MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 500


class WebhookRecord(msgspec.Struct, frozen=True):
    """A subscription as the API shows it: never its secret."""

    name: str
    url: str
    feature: str | None
    group: str | None
    test: str | None
    operation: str | None
    delivered: int
    """The last revision handled (delivered, or not kept by the filter)."""
    failing: bool
    """Deliveries have failed for longer than FLAGGERY_WEBHOOK_FAILING_AFTER (still retried)."""
    failing_since: datetime | None
    """The first failure of the current streak of failures; None after a success."""
    last_error: str | None


class Subscription(msgspec.Struct, frozen=True):
    """A subscription as the deliverer needs it: with its secret."""

    record: WebhookRecord
    secret: str = msgspec.field(default="")

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"Subscription({self.record.name!r})"

    @property
    def filter(self) -> ChangeFilter:
        return ChangeFilter(self.record.feature, self.record.group, self.record.test)


def _record(row: Row[tuple[object, ...]]) -> WebhookRecord:
    w = row._mapping
    return WebhookRecord(
        w["name"],
        w["url"],
        w["feature"],
        w["group"],
        w["test"],
        w["operation"],
        int(w["delivered"]),
        bool(w["failing"]),
        w["failing_since"],
        w["last_error"],
    )


def _optional_name(kind: str, name: str | None) -> str | None:
    if name is not None and (not storable(name) or len(name) > t.NAME_LENGTH):
        raise ValidationError(f"A {kind} filter is a {kind} name, got {name!r:.100}.")
    return name


def _require_storable(name: str) -> None:
    """A name the database cannot hold names no webhook (flaggery.store.validation)."""
    if not storable(name):
        raise WebhookNotFound(f"Webhook {name!r:.100} does not exist.")


def _check_secret(secret: object) -> str:
    if not isinstance(secret, str) or not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise ValidationError(
            f"A webhook secret is {MIN_SECRET_LENGTH}-{MAX_SECRET_LENGTH} characters, such as "
            "the output of `openssl rand -hex 32`."
        )
    return secret


def _check_revision(revision: object, what: str) -> int:
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise ValidationError(f"{what} must be a revision, an integer, got {revision!r:.40}.")
    if not 0 <= revision <= MAX_SUBJECT_ID:
        raise ValidationError(f"{what} must be a revision from 0 to {MAX_SUBJECT_ID}.")
    return revision


class WebhooksAdmin:
    _db: Database
    webhook_policy: TargetPolicy = TargetPolicy()
    """Which addresses a webhook may reach (flaggery.store.webhook_targets); the HTTP app sets
    it from FLAGGERY_WEBHOOK_ALLOW_LOOPBACK and FLAGGERY_WEBHOOK_ALLOW_PRIVATE."""

    async def add_webhook(  # noqa: PLR0913 - the filter's names, keyword-only
        self,
        name: str,
        url: str,
        secret: str,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        operation: str | None = None,
        after: int | None = None,
    ) -> WebhookRecord:
        """Subscribe ``url`` to the writes the filter keeps (each name given narrows, as in
        `changes`; ``operation``: an admin operation's name, such as ``kill_switch``, one of
        WRITE_OPERATIONS; ``revert`` and ``restore`` keep every revert and restore), signed
        with ``secret`` (16-500 characters). Delivery starts after revision ``after``
        (default: the current revision, so only later writes are sent).

        The URL is resolved now and before every delivery; an address the policy refuses
        (link-local, the metadata address, loopback and private ranges unless allowed) raises
        WebhookTargetRefused (a ValidationError). Raises WebhookExists, ValidationError."""
        check_name("webhook", name)
        _check_secret(secret)
        filters = {
            "feature": _optional_name("feature", feature),
            "group": _optional_name("group", group),
            "test": _optional_name("A/B test", test),
            "operation": _optional_operation(operation),
        }
        await resolve(url, self.webhook_policy)
        start = await self._db.revision() if after is None else _check_revision(after, "after")
        values = {"name": name, "url": url, "secret": secret, "delivered": start, **filters}
        async with self._db.read() as conn:
            try:
                async with conn.begin():
                    await conn.execute(insert(t.webhooks).values(**values))
            except IntegrityError:
                raise WebhookExists(f"Webhook {name!r} exists already.") from None
        return await self.get_webhook(name)

    async def webhooks(self) -> list[WebhookRecord]:
        """Every subscription, by name, without secrets."""
        return [s.record for s in await subscriptions(self._db)]

    async def get_webhook(self, name: str) -> WebhookRecord:
        """The subscription ``name``, without its secret. Raises WebhookNotFound."""
        _require_storable(name)
        async with self._db.read() as conn:
            row = (await conn.execute(select(t.webhooks).where(t.webhooks.c.name == name))).first()
        if row is None:
            raise WebhookNotFound(f"Webhook {name!r} does not exist.")
        return _record(row)

    async def remove_webhook(self, name: str) -> None:
        """Delete the subscription; nothing more is delivered. Raises WebhookNotFound."""
        _require_storable(name)
        async with self._db.read() as conn, conn.begin():
            result = await conn.execute(delete(t.webhooks).where(t.webhooks.c.name == name))
        if result.rowcount == 0:
            raise WebhookNotFound(f"Webhook {name!r} does not exist.")

    async def replay_webhook(self, name: str, from_revision: int) -> WebhookRecord:
        """Deliver again every kept write from revision ``from_revision`` on, in order (the
        cursor moves back to ``from_revision - 1``; a delivery in flight cannot move it
        forward past the replay). Also clears the failing state. Raises WebhookNotFound,
        ValidationError."""
        _check_revision(from_revision, "from_revision")
        _require_storable(name)
        values = {
            "delivered": max(from_revision - 1, 0),
            "failing": False,
            "failing_since": None,
            "last_error": None,
        }
        async with self._db.read() as conn, conn.begin():
            query = update(t.webhooks).where(t.webhooks.c.name == name).values(**values)
            result = await conn.execute(query)
        if result.rowcount == 0:
            raise WebhookNotFound(f"Webhook {name!r} does not exist.")
        return await self.get_webhook(name)


def _optional_operation(operation: str | None) -> str | None:
    """A webhook's operation filter: None, or a name in WRITE_OPERATIONS (a name no write
    records would keep nothing, silently). Raises ValidationError saying what is allowed."""
    if operation is None or (isinstance(operation, str) and operation in WRITE_OPERATIONS):
        return operation
    shown = repr(operation)[:80] if isinstance(operation, str) else type(operation).__name__
    raise ValidationError(
        f"No write records the operation {shown}: an operation filter is an admin "
        f"operation's name, one of {', '.join(sorted(WRITE_OPERATIONS))}."
    )


async def subscriptions(db: Database) -> list[Subscription]:
    """Every subscription with its secret, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(t.webhooks).order_by(t.webhooks.c.name))).all()
    return [Subscription(_record(row), row.secret) for row in rows]


async def claim(db: Database, name: str, owner: str, now: datetime, seconds: float) -> bool:
    """Whether ``owner`` holds the delivery lease of ``name`` until ``now + seconds``: taken
    if free or expired, renewed if its own. One conditional UPDATE, atomic on both databases."""
    w = t.webhooks.c
    free = or_(w.leased_by.is_(None), w.leased_by == owner, w.leased_until < now)
    query = (
        update(t.webhooks)
        .where(w.name == name, free)
        .values(leased_by=owner, leased_until=now + timedelta(seconds=seconds))
    )
    async with db.read() as conn, conn.begin():
        return (await conn.execute(query)).rowcount == 1


async def advance(db: Database, name: str, cursor: int, to: int) -> bool:
    """Move ``name``'s cursor from ``cursor`` to ``to`` and clear its failures; False (nothing
    changed) if the cursor is no longer ``cursor``: replayed, or the row removed."""
    w = t.webhooks.c
    values = {"delivered": to, "failing": False, "failing_since": None, "last_error": None}
    query = update(t.webhooks).where(w.name == name, w.delivered == cursor).values(**values)
    async with db.read() as conn, conn.begin():
        return (await conn.execute(query)).rowcount == 1


async def record_failure(
    db: Database, name: str, now: datetime, error: str, failing_after: float
) -> None:
    """Note a failed delivery: the streak starts now if none runs, and the subscription is
    marked failing once the streak is ``failing_after`` seconds old."""
    w = t.webhooks.c
    async with db.read() as conn, conn.begin():
        row = (await conn.execute(select(w.failing_since).where(w.name == name))).first()
        if row is None:
            return
        since = row.failing_since or now
        failing = (now - since).total_seconds() >= failing_after
        values = {"failing_since": since, "failing": failing, "last_error": error[:1000]}
        await conn.execute(update(t.webhooks).where(w.name == name).values(**values))
