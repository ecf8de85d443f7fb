"""Release plans: a feature's rollout ramped step by step (1% for an hour, 5% for a day, ...).

A plan is one row beside the rollout it drives. Every change of it is one ordinary write: the
plan row and the rollout it moves (if any) change in one transaction, with one revision and
one change-log row holding the rollout's fact and a `DeliveryFact` saying what the plan did.
Moving the rollout goes through `set_rollout` inside that write (flaggery.store.database
`joining`), so a plan's move is exactly a person's: a rollback to an earlier step gets the
buckets that step had (sticky allocation, flaggery.engine.restore).

The rules: a due plan advances one step per write, and a step's hold starts when it is
reached, so an admin server that was down resumes the ramp where it stood and never skips a
step. A change of the rollout made by anything but the plan pauses an active plan in the same
write (`pause_for_manual_change`). Pausing stops the clock; resuming starts the current step's
hold again; a rollback pauses.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import DeliveryFact
from flaggery.errors import (
    DatabaseUnavailable,
    FlaggeryError,
    PlanExists,
    PlanNotFound,
    PlanStateConflict,
    ValidationError,
)
from flaggery.store import tables as t
from flaggery.store.actor import acting_as
from flaggery.store.database import Database, WriteTransaction, joining
from flaggery.store.features import require_variant
from flaggery.store.queries import read_rollouts
from flaggery.store.records import AbTestRecord
from flaggery.store.validation import aware_utc, check_hold, check_proportion, check_until

__all__ = [
    "MAX_PLAN_STEPS",
    "PlanRecord",
    "PlanStep",
    "PlansAdmin",
    "hold_words",
    "pause_for_manual_change",
]

MAX_PLAN_STEPS = 100
ACTIVE, PAUSED, DONE = "active", "paused", "done"

_driving: ContextVar[str | None] = ContextVar("flaggery_plan_driving", default=None)
"""The feature whose plan is moving its rollout in this task: that move is no manual change."""


class PlanStep(NamedTuple):
    proportion: float
    """0 to 1 (0.05 for 5%)."""
    hold: timedelta | None = None
    """How long the step lasts before the next; None only for the last step."""


class PlanRecord(NamedTuple):
    feature: str
    variant: str
    steps: list[PlanStep]
    status: str
    """active (advances by itself), paused (waits for a person) or done (at its last step)."""
    step: int
    """The current step's index (0-based); -1 before the first."""
    proportion: float
    """The current step's proportion (0 before the first)."""
    next_at: datetime | None
    """When it advances next (UTC); None unless active."""
    updated_by: str
    updated_at: datetime
    note: str
    """The last thing done to it, in words (the history has every one)."""


class PlansAdmin:
    _db: Database

    if TYPE_CHECKING:  # RolloutsAdmin's and AbTestsAdmin's, beside it in AsyncFlaggery

        async def set_rollout(
            self, feature_name: str, variant_name: str | None, proportion: float | None
        ) -> None: ...

        async def add_rollout(self, variant_name: str, feature_name: str) -> None: ...

        async def get_abtest(self, test_name: str) -> AbTestRecord: ...

    async def create_plan(
        self,
        feature_name: str,
        variant_name: str,
        steps: Sequence[PlanStep | tuple[float, timedelta | None]],
        start: datetime | None = None,
    ) -> PlanRecord:
        """A release plan ramping the feature's rollout of ``variant_name`` through ``steps``
        (increasing proportions; every step but the last has a hold), its first step due at
        ``start`` (aware; None: now). The admin server applies the steps (`apply_due`).

        Raises FeatureNotFound, VariantNotFound, PlanExists, ValidationError. One write."""
        checked = check_steps(steps)
        first_at = None if start is None else aware_utc(start, "start")
        total = sum((step.hold for step in checked if step.hold is not None), timedelta(0))
        check_until(self._db.clock() if first_at is None else first_at, total, "start")
        async with self._db.write("create_plan") as tx:
            await require_variant(tx.conn, feature_name, variant_name)
            if await _read_plan(tx.conn, feature_name) is not None:
                raise PlanExists(
                    f"Feature {feature_name!r} has a release plan already: change it with "
                    "pause, resume, rollback or skip, or remove it first."
                )
            note = f"created: {describe_steps(checked)}"
            await tx.conn.execute(
                insert(t.release_plans).values(
                    feature=feature_name,
                    variant=variant_name,
                    steps=_encode_steps(checked),
                    status=ACTIVE,
                    step=-1,
                    next_at=first_at or tx.now,
                    updated_by=tx.actor,
                    updated_at=tx.now,
                    note=note,
                )
            )
            _record(tx, feature_name, "created", note)
        return await self.get_plan(feature_name)

    async def get_plan(self, feature_name: str) -> PlanRecord:
        """The feature's plan: its steps, where it stands, when it moves next, who did the
        last thing to it. Raises PlanNotFound."""
        async with self._db.read() as conn:
            return await _require_plan(conn, feature_name)

    async def list_plans(self) -> list[PlanRecord]:
        """Every release plan, by feature name."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(t.release_plans).order_by(t.release_plans.c.feature))
            return [_plan_of(row) for row in rows]

    async def pause_plan(self, feature_name: str, reason: str = "") -> PlanRecord:
        """Stop the plan where it is (its rollout stays); nothing is written unless it is
        active. The function guards call. Raises PlanNotFound. One write."""
        async with self._db.write("pause_plan") as tx:
            plan = await _require_plan(tx.conn, feature_name)
            if plan.status == ACTIVE:
                note = f"paused at {_at_step(plan, plan.step)}" + (f": {reason}" if reason else "")
                await _update(tx, plan, PAUSED, plan.step, None, note, "paused")
        return await self.get_plan(feature_name)

    async def resume_plan(self, feature_name: str) -> PlanRecord:
        """Let a paused plan advance again: the current step's hold starts now. Raises
        PlanNotFound, PlanStateConflict (a finished plan). One write."""
        async with self._db.write("resume_plan") as tx:
            plan = await _require_plan(tx.conn, feature_name)
            if plan.status == DONE:
                raise PlanStateConflict(
                    f"The plan of {feature_name!r} is done: roll it back to an earlier step "
                    "first, or remove it."
                )
            if plan.status == PAUSED:
                next_at = _next_at(plan, plan.step, tx.now)
                note = f"resumed at {_at_step(plan, plan.step)}"
                await _update(tx, plan, ACTIVE, plan.step, next_at, note, "resumed")
        return await self.get_plan(feature_name)

    async def rollback_plan(self, feature_name: str, to_step: int = -1) -> PlanRecord:
        """Move the rollout back to an earlier step's proportion (``to_step``, 0-based; -1:
        to 0%), with exactly the buckets it had there, and pause the plan. The function
        guards call. Raises PlanNotFound, PlanStateConflict (a step not before the current
        one). One write: the plan and the rollout together."""
        async with self._db.write("rollback_plan") as tx:
            plan = await _require_plan(tx.conn, feature_name)
            if not -1 <= to_step < plan.step:
                raise PlanStateConflict(
                    f"The plan of {feature_name!r} is at step {plan.step + 1}: roll back to "
                    f"an earlier one (1 to {plan.step}, or 0 for 0%)."
                )
            await self._move_rollout(tx, plan, to_step)
            note = f"rolled back from {_at_step(plan, plan.step)} to {_at_step(plan, to_step)}"
            await _update(tx, plan, PAUSED, to_step, None, note, "rolled_back")
        return await self.get_plan(feature_name)

    async def skip_plan(self, feature_name: str, to_step: int | None = None) -> PlanRecord:
        """Go to a later step now (``to_step``, 0-based; None: the next one). An active plan
        then holds the new step from now; a paused one stays paused. Raises PlanNotFound,
        PlanStateConflict (no such later step). One write."""
        async with self._db.write("skip_plan") as tx:
            plan = await _require_plan(tx.conn, feature_name)
            target = plan.step + 1 if to_step is None else to_step
            if not plan.step < target < len(plan.steps):
                raise PlanStateConflict(
                    f"The plan of {feature_name!r} is at step {plan.step + 1} of "
                    f"{len(plan.steps)}: skip to a later one."
                )
            await self._move_rollout(tx, plan, target)
            note = f"skipped from {_at_step(plan, plan.step)} to {_at_step(plan, target)}"
            status, next_at = _after_reaching(plan, target, tx.now)
            if plan.status == PAUSED and status == ACTIVE:
                status, next_at = PAUSED, None
            await _update(tx, plan, status, target, next_at, note, "skipped")
        return await self.get_plan(feature_name)

    async def pause_plans_in_test(self, test_name: str, reason: str) -> list[str]:
        """Pause every active plan whose feature and variant an A/B test sets (for a test
        whose health turned red: the sample-ratio alarm, flaggery.engine.health_report); the
        features paused. Each pause is one write; nothing is written for a plan not active,
        so calling it at every health check while the test stays red is harmless. Raises
        AbTestNotFound."""
        test = await self.get_abtest(test_name)
        tested = {pair for group in test.groups for pair in group.variants.items()}
        paused = []
        for plan in await self.list_plans():
            if plan.status == ACTIVE and (plan.feature, plan.variant) in tested:
                await self.pause_plan(plan.feature, f"A/B test {test_name!r}: {reason}")
                paused.append(plan.feature)
        return paused

    async def rm_plan(self, feature_name: str) -> None:
        """Remove the plan; its rollout stays as it is. Raises PlanNotFound. One write."""
        async with self._db.write("rm_plan") as tx:
            plan = await _require_plan(tx.conn, feature_name)
            await tx.conn.execute(
                delete(t.release_plans).where(t.release_plans.c.feature == feature_name)
            )
            _record(tx, feature_name, "removed", f"at {_at_step(plan, plan.step)}")

    async def advance_due_plans(self) -> list[str]:
        """Advance every active plan whose instant has passed by one step, each in its own
        write; the features advanced. A plan whose step is refused (its variant was removed,
        say) is paused instead, with the reason in its note and the history. Safe to run in
        any number of processes at once: each write re-reads the plan under the database's
        write lock, so a step is taken once."""
        now = self._db.clock()
        async with self._db.read() as conn:
            p = t.release_plans.c
            query = select(p.feature).where(p.status == ACTIVE, p.next_at <= now)
            due = list((await conn.execute(query.order_by(p.next_at))).scalars())
        advanced = []
        for feature in due:
            try:
                if await self._advance(feature):
                    advanced.append(feature)
            except DatabaseUnavailable:
                raise
            except FlaggeryError as refused:  # the variant was removed, say: stop, say why
                await self.pause_plan(feature, f"its next step was refused: {refused}")
        return advanced

    async def _advance(self, feature_name: str) -> bool:
        with acting_as(f"plan:{feature_name}"):
            async with self._db.write("advance_plan") as tx:
                plan = await _read_plan(tx.conn, feature_name)
                if plan is None or plan.status != ACTIVE or plan.next_at is None:
                    return False
                if plan.next_at > tx.now:
                    return False
                target = plan.step + 1
                await self._move_rollout(tx, plan, target)
                status, next_at = _after_reaching(plan, target, tx.now)
                late = (tx.now - plan.next_at).total_seconds()
                note = f"advanced to {_at_step(plan, target)}"
                await _update(tx, plan, status, target, next_at, note, "advanced", late)
                return True

    async def _move_rollout(self, tx: WriteTransaction, plan: PlanRecord, step: int) -> None:
        proportion = 0.0 if step < 0 else plan.steps[step].proportion
        with _driving_plan(plan.feature), joining(tx):
            if plan.feature not in await read_rollouts(tx.conn, plan.feature):
                await self.add_rollout(plan.variant, plan.feature)
            await self.set_rollout(plan.feature, plan.variant, proportion)


async def pause_for_manual_change(tx: WriteTransaction, feature_name: str) -> None:
    """Called by every write of a rollout: unless the feature's own plan makes it, an active
    plan of the feature is paused in the same write (and the history says why), so a person's
    change and the plan never fight over the rollout."""
    if _driving.get() == feature_name:
        return
    plan = await _read_plan(tx.conn, feature_name)
    if plan is None or plan.status != ACTIVE:
        return
    note = f"paused at {_at_step(plan, plan.step)}: the rollout was changed by {tx.actor}"
    await _update(tx, plan, PAUSED, plan.step, None, note, "paused")


def check_steps(steps: Sequence[PlanStep | tuple[float, timedelta | None]]) -> list[PlanStep]:
    """The steps as PlanSteps, or ValidationError saying what is wrong."""
    if not 1 <= len(steps) <= MAX_PLAN_STEPS:
        raise ValidationError(f"A plan has 1 to {MAX_PLAN_STEPS} steps, got {len(steps)}.")
    checked: list[PlanStep] = []
    for number, (proportion, hold) in enumerate(steps, start=1):
        proportion = check_proportion(proportion)
        if checked and proportion <= checked[-1].proportion:
            raise ValidationError(
                f"Step {number}'s proportion ({proportion:g}) must be above step "
                f"{number - 1}'s ({checked[-1].proportion:g}): a plan only ramps up."
            )
        last = number == len(steps)
        if not last and hold is None:
            raise ValidationError(f"Step {number} needs a positive hold (only the last may not).")
        if not last:
            hold = check_hold(hold, f"Step {number}'s hold")
        checked.append(PlanStep(proportion, None if last else hold))
    return checked


def describe_steps(steps: Sequence[PlanStep]) -> str:
    return ", ".join(
        f"{step.proportion:.4g}"
        if step.hold is None
        else f"{step.proportion:.4g} for {hold_words(step.hold)}"
        for step in steps
    )


_WORDS = (("d", 86400), ("h", 3600), ("min", 60))


def hold_words(hold: timedelta) -> str:
    """A plan step's hold in the dashboard plan form's words: ``"1 d"``, ``"1 h 30 min"``,
    ``"45 s"`` (flaggery.ui.delivery.parse_plan_steps reads it back to the same hold)."""
    rest = hold.total_seconds()
    words = []
    for unit, seconds in _WORDS:
        whole, rest = divmod(rest, seconds)
        if whole:
            words.append(f"{int(whole)} {unit}")
    if rest or not words:
        words.append(f"{round(rest, 3):g} s")
    return " ".join(words)


def _at_step(plan: PlanRecord, step: int) -> str:
    if step < 0:
        return "0 (before step 1)"
    return f"step {step + 1} ({plan.steps[step].proportion:.4g})"


def _next_at(plan: PlanRecord, step: int, now: datetime) -> datetime | None:
    if step < 0:
        return now
    hold = plan.steps[step].hold
    return None if hold is None else now + hold


def _after_reaching(plan: PlanRecord, step: int, now: datetime) -> tuple[str, datetime | None]:
    if step == len(plan.steps) - 1:
        return DONE, None
    return ACTIVE, _next_at(plan, step, now)


async def _update(  # noqa: PLR0913 - the parts of a plan's state, each written
    tx: WriteTransaction,
    plan: PlanRecord,
    status: str,
    step: int,
    next_at: datetime | None,
    note: str,
    event: str,
    late_seconds: float | None = None,
) -> None:
    await tx.conn.execute(
        update(t.release_plans)
        .where(t.release_plans.c.feature == plan.feature)
        .values(
            status=status,
            step=step,
            next_at=next_at,
            updated_by=tx.actor,
            updated_at=tx.now,
            note=note,
        )
    )
    _record(tx, plan.feature, event, note, late_seconds)
    if status == DONE and plan.status != DONE:
        _record(tx, plan.feature, "done", f"at {_at_step(plan, step)}")


def _record(
    tx: WriteTransaction, feature: str, event: str, detail: str, late: float | None = None
) -> None:
    tx.record(DeliveryFact("plan", feature, event, (feature,), detail, late))


async def _read_plan(conn: AsyncConnection, feature_name: str) -> PlanRecord | None:
    query = select(t.release_plans).where(t.release_plans.c.feature == feature_name)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else _plan_of(row)


async def _require_plan(conn: AsyncConnection, feature_name: str) -> PlanRecord:
    plan = await _read_plan(conn, feature_name)
    if plan is None:
        raise PlanNotFound(
            f"Feature {feature_name!r} has no release plan: create one with create_plan()."
        )
    return plan


def _plan_of(row: Any) -> PlanRecord:
    steps = _decode_steps(row.steps)
    return PlanRecord(
        row.feature,
        row.variant,
        steps,
        row.status,
        row.step,
        0.0 if row.step < 0 else steps[row.step].proportion,
        row.next_at,
        row.updated_by,
        row.updated_at,
        row.note,
    )


def _encode_steps(steps: Sequence[PlanStep]) -> str:
    return json.dumps(
        [[s.proportion, None if s.hold is None else s.hold.total_seconds()] for s in steps]
    )


def _decode_steps(text: str) -> list[PlanStep]:
    steps = json.loads(text)
    return [PlanStep(p, None if hold is None else timedelta(seconds=hold)) for p, hold in steps]


@contextlib.contextmanager
def _driving_plan(feature_name: str) -> Iterator[None]:
    """Rollout writes in this block are the plan's own (no pause)."""
    token = _driving.set(feature_name)
    try:
        yield
    finally:
        _driving.reset(token)
