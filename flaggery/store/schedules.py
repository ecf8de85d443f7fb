"""Scheduled changes: named lists of steps, each an admin write to make at an instant.

A step is applied by an admin server (`apply_due_schedules`, run every second by the admin
server's applier) as an ordinary write: the step's operation (`set_rollout`, `kill_switch`,
...) joins the write that marks the step applied (flaggery.store.database `joining`), so the
change, its revision, its change-log row (actor ``schedule:<name>``, a `DeliveryFact`) and
the step's new status commit together or not at all. That write re-reads the pending steps
after taking the database's write lock (the revision row, which every writer of every process
locks first; on PostgreSQL the step rows are also locked ``FOR UPDATE SKIP LOCKED``), so two
admin servers never apply a step twice, and an edit or a cancel that committed first leaves
nothing to apply: a moved step never fires at its old instant.

The rule when an admin server was down: all of a schedule's steps that are due are applied in
due order in one write, so the result is the latest due state, once; the history says how late
the latest of them was. A step whose operation is refused (its feature was removed, say) is
marked failed with the reason, in the same write, and the steps after it still apply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import DeliveryFact
from flaggery.errors import (
    DatabaseUnavailable,
    FlaggeryError,
    ScheduleExists,
    ScheduleNotFound,
    ValidationError,
)
from flaggery.store import tables as t
from flaggery.store.actor import acting_as
from flaggery.store.database import Database, WriteTransaction, joining
from flaggery.store.scheduled_operations import check_arguments, features_of, run_operation
from flaggery.store.validation import aware_utc, check_name

if TYPE_CHECKING:
    from flaggery.store.scheduled_operations import Admin

__all__ = ["MAX_SCHEDULE_STEPS", "ScheduleRecord", "ScheduledStep", "SchedulesAdmin", "StepRecord"]

log = logging.getLogger(__name__)

MAX_SCHEDULE_STEPS = 100
PENDING, APPLIED, CANCELLED, FAILED = "pending", "applied", "cancelled", "failed"


class ScheduledStep(NamedTuple):
    at: datetime
    """When (aware; stored as UTC)."""
    operation: str
    """One of flaggery.store.scheduled_operations.OPERATIONS."""
    arguments: Mapping[str, object]


class StepRecord(NamedTuple):
    step: int
    """Numbered from 1 within the schedule; an edit's new steps continue the numbering."""
    at: datetime
    operation: str
    arguments: dict[str, object]
    status: str
    """pending, applied, cancelled (cancelled or replaced by an edit) or failed."""
    created_by: str
    applied_revision: int | None
    late_seconds: float | None
    """How long after `at` it was applied."""
    error: str | None


class ScheduleRecord(NamedTuple):
    name: str
    steps: list[StepRecord]
    next_at: datetime | None
    """The earliest pending step's instant; None when nothing is pending."""


class SchedulesAdmin:
    _db: Database

    async def create_schedule(self, name: str, steps: Sequence[ScheduledStep]) -> ScheduleRecord:
        """A new schedule of ``steps``, applied by the admin server when each is due.

        Raises ScheduleExists, ValidationError (a naive instant, an unknown operation, a bad
        argument). One write."""
        check_name("schedule", name)
        checked = _check_steps(steps)
        async with self._db.write("create_schedule") as tx:
            if await _read_steps(tx.conn, name):
                raise ScheduleExists(f"A schedule named {name!r} exists: pick another name.")
            await _insert_steps(tx, name, checked, first=1)
            _record(tx, name, "created", checked, _describe(checked))
        return await self.get_schedule(name)

    async def edit_schedule(self, name: str, steps: Sequence[ScheduledStep]) -> ScheduleRecord:
        """Replace the schedule's pending steps with ``steps`` (applied and failed ones stay
        as they were), in one write: a replaced step is marked cancelled, so it can no longer
        fire and the schedule still shows what it was. Raises ScheduleNotFound,
        ValidationError."""
        checked = _check_steps(steps)
        async with self._db.write("edit_schedule") as tx:
            existing = await _require_steps(tx.conn, name)
            s = t.schedule_steps.c
            await tx.conn.execute(
                update(t.schedule_steps)
                .where(s.schedule == name, s.status == PENDING)
                .values(status=CANCELLED)
            )
            await _insert_steps(tx, name, checked, first=existing[-1].step + 1)
            _record(tx, name, "edited", checked, "now " + _describe(checked))
        return await self.get_schedule(name)

    async def cancel_schedule(self, name: str) -> ScheduleRecord:
        """Cancel the schedule's pending steps (nothing is written if none is pending).
        Raises ScheduleNotFound. One write."""
        async with self._db.write("cancel_schedule") as tx:
            steps = await _require_steps(tx.conn, name)
            pending = [step for step in steps if step.status == PENDING]
            if pending:
                s = t.schedule_steps.c
                await tx.conn.execute(
                    update(t.schedule_steps)
                    .where(s.schedule == name, s.status == PENDING)
                    .values(status=CANCELLED)
                )
                as_steps = [ScheduledStep(p.at, p.operation, p.arguments) for p in pending]
                _record(tx, name, "cancelled", as_steps, f"{len(pending)} pending steps")
        return await self.get_schedule(name)

    async def get_schedule(self, name: str) -> ScheduleRecord:
        """The schedule with all its steps, what became of each. Raises ScheduleNotFound."""
        async with self._db.read() as conn:
            return _schedule_of(name, await _require_steps(conn, name))

    async def list_schedules(self, *, pending_only: bool = False) -> list[ScheduleRecord]:
        """Every schedule (or those with a pending step), by name."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(t.schedule_steps).order_by(
                    t.schedule_steps.c.schedule, t.schedule_steps.c.step
                )
            )
            by_name: dict[str, list[StepRecord]] = {}
            for row in rows:
                by_name.setdefault(row.schedule, []).append(_step_of(row))
        schedules = [_schedule_of(name, steps) for name, steps in by_name.items()]
        return [s for s in schedules if s.next_at is not None or not pending_only]

    async def apply_due_schedules(self) -> list[str]:
        """Apply every due step, one write per schedule (the names applied). Safe to run in
        any number of processes at once: each step is applied once (see the module)."""
        now = self._db.clock()
        async with self._db.read() as conn:
            s = t.schedule_steps.c
            query = (
                select(s.schedule, func.min(s.due_at))
                .where(s.status == PENDING, s.due_at <= now)
                .group_by(s.schedule)
            )
            due = [name for name, _ in sorted(await conn.execute(query), key=lambda r: r[1])]
        applied = []
        for name in due:
            if await self._apply_schedule(name):
                applied.append(name)
            else:  # between this read and the write's lock: another writer came first
                log.debug("Schedule %s: its due steps were applied by another writer", name)
        return applied

    async def _apply_schedule(self, name: str) -> bool:
        with acting_as(f"schedule:{name}"):
            async with self._db.write("apply_schedule") as tx:
                due = await _lock_due_steps(tx, name)
                if not due:
                    return False  # another process applied them, or an edit moved them
                failures = [await self._apply_step(tx, step) for step in due]
                errors = [f"step {s.step}: {e}" for s, e in zip(due, failures, strict=True) if e]
                event = "failed" if all(failures) else "applied"
                applied = [s for s, e in zip(due, failures, strict=True) if not e]
                detail = _describe([ScheduledStep(s.at, s.operation, s.arguments) for s in due])
                if len(due) > 1:
                    detail += f" ({len(due)} due steps in one write: the latest state)"
                if errors:
                    detail += "; refused: " + "; ".join(errors)
                late = (tx.now - (applied or due)[-1].at).total_seconds()
                as_steps = [ScheduledStep(s.at, s.operation, s.arguments) for s in due]
                _record(tx, name, event, as_steps, detail, late)
                return True

    async def _apply_step(self, tx: WriteTransaction, step: _DueStep) -> str | None:
        """Apply one step inside `tx`; its refusal (a FlaggeryError) as text, or None."""
        admin: Admin = self  # type: ignore[assignment]  # AsyncFlaggery combines the mixins
        facts_before = len(tx.facts)
        error: str | None = None
        try:
            async with tx.conn.begin_nested():
                with joining(tx):
                    await run_operation(admin, step.operation, step.arguments)
        except DatabaseUnavailable:
            raise
        except FlaggeryError as refused:
            del tx.facts[facts_before:]  # its savepoint is rolled back
            error = f"{type(refused).__name__}: {refused}"
        s = t.schedule_steps.c
        await tx.conn.execute(
            update(t.schedule_steps)
            .where(s.schedule == step.schedule_name, s.step == step.step)
            .values(
                status=FAILED if error else APPLIED,
                applied_revision=None if error else tx.revision,
                late_seconds=(tx.now - step.at).total_seconds(),
                error=error,
            )
        )
        return error


class _DueStep(NamedTuple):
    schedule_name: str
    step: int
    at: datetime
    operation: str
    arguments: dict[str, object]


async def _lock_due_steps(tx: WriteTransaction, name: str) -> list[_DueStep]:
    s = t.schedule_steps.c
    query = (
        select(s.step, s.due_at, s.operation, s.arguments)
        .where(s.schedule == name, s.status == PENDING, s.due_at <= tx.now)
        .order_by(s.due_at, s.step)
    )
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = await tx.conn.execute(query)
    return [_DueStep(name, r.step, r.due_at, r.operation, json.loads(r.arguments)) for r in rows]


def _check_steps(steps: Sequence[ScheduledStep]) -> list[ScheduledStep]:
    if not 1 <= len(steps) <= MAX_SCHEDULE_STEPS:
        raise ValidationError(f"A schedule has 1 to {MAX_SCHEDULE_STEPS} steps, got {len(steps)}.")
    checked = []
    for number, step in enumerate(steps, start=1):
        at, operation, arguments = step
        at = aware_utc(at, f"Step {number}'s instant")
        try:
            checked.append(ScheduledStep(at, operation, check_arguments(operation, arguments)))
        except ValidationError as error:
            raise ValidationError(f"Step {number}: {error}") from error
    return sorted(checked, key=lambda step: step.at)


async def _insert_steps(
    tx: WriteTransaction, name: str, steps: Sequence[ScheduledStep], first: int
) -> None:
    await tx.conn.execute(
        insert(t.schedule_steps),
        [
            {
                "schedule": name,
                "step": number,
                "due_at": step.at,
                "operation": step.operation,
                "arguments": json.dumps(dict(step.arguments), sort_keys=True),
                "status": PENDING,
                "created_by": tx.actor,
            }
            for number, step in enumerate(steps, start=first)
        ],
    )


def _describe(steps: Sequence[ScheduledStep]) -> str:
    return "; ".join(
        f"{step.at.isoformat()} {step.operation} {json.dumps(dict(step.arguments), sort_keys=True)}"
        for step in steps
    )


def _record(  # noqa: PLR0913 - one fact's parts
    tx: WriteTransaction,
    name: str,
    event: str,
    steps: Sequence[ScheduledStep],
    detail: str,
    late: float | None = None,
) -> None:
    features = sorted({f for step in steps for f in features_of(step.operation, step.arguments)})
    tx.record(DeliveryFact("schedule", name, event, tuple(features), detail, late))


async def _read_steps(conn: AsyncConnection, name: str) -> list[StepRecord]:
    s = t.schedule_steps.c
    rows = await conn.execute(select(t.schedule_steps).where(s.schedule == name).order_by(s.step))
    return [_step_of(row) for row in rows]


async def _require_steps(conn: AsyncConnection, name: str) -> list[StepRecord]:
    steps = await _read_steps(conn, name)
    if not steps:
        raise ScheduleNotFound(f"No schedule is named {name!r}: list them with list_schedules().")
    return steps


def _step_of(row: Any) -> StepRecord:
    return StepRecord(
        row.step,
        row.due_at,
        row.operation,
        json.loads(row.arguments),
        row.status,
        row.created_by,
        row.applied_revision,
        row.late_seconds,
        row.error,
    )


def _schedule_of(name: str, steps: list[StepRecord]) -> ScheduleRecord:
    pending = [step.at for step in steps if step.status == PENDING]
    return ScheduleRecord(name, steps, min(pending) if pending else None)
