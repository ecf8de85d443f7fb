"""Scheduled changes and release plans over REST (docs/delivery.md): thin translations to the
store's schedule and plan methods (flaggery.store.schedules, flaggery.store.plans)."""

from __future__ import annotations

from flaggery import errors as e
from flaggery.http.codec import (
    PauseQuery,
    PlanBody,
    PlanList,
    PlanOut,
    PlanStepOut,
    ScheduleBody,
    ScheduledStepOut,
    ScheduleList,
    ScheduleOut,
    Success,
    ToStepQuery,
    parse_instant,
)
from flaggery.http.endpoint import Call, Operation
from flaggery.store.plans import PlanRecord, PlanStep
from flaggery.store.schedules import ScheduledStep, ScheduleRecord
from flaggery.store.validation import hold_from_seconds

__all__ = ["OPERATIONS", "plan_out", "schedule_out"]

SCHEDULE = "/v1/schedules/{schedule}"
PLAN = "/v1/features/{feature}/plan"


def schedule_out(record: ScheduleRecord) -> ScheduleOut:
    steps = [ScheduledStepOut(*step) for step in record.steps]
    return ScheduleOut(record.name, record.next_at, steps)


def plan_out(plan: PlanRecord) -> PlanOut:
    steps = [
        PlanStepOut(s.proportion, None if s.hold is None else s.hold.total_seconds())
        for s in plan.steps
    ]
    return PlanOut(
        plan.feature, plan.variant, steps, plan.status, plan.step, plan.proportion,
        plan.next_at, plan.updated_by, plan.updated_at, plan.note,
    )  # fmt: skip


def _steps(body: ScheduleBody) -> list[ScheduledStep]:
    return [
        ScheduledStep(parse_instant(s.at, f"Step {n}'s at"), s.operation, s.arguments)
        for n, s in enumerate(body.steps, start=1)
    ]


async def list_schedules(call: Call[None, None]) -> ScheduleList:
    return ScheduleList([schedule_out(s) for s in await call.store.list_schedules()])


async def get_schedule(call: Call[None, None]) -> ScheduleOut:
    return schedule_out(await call.store.get_schedule(call.path["schedule"]))


async def create_schedule(call: Call[None, ScheduleBody]) -> ScheduleOut:
    steps = _steps(call.body)
    return schedule_out(await call.store.create_schedule(call.path["schedule"], steps))


async def edit_schedule(call: Call[None, ScheduleBody]) -> ScheduleOut:
    steps = _steps(call.body)
    return schedule_out(await call.store.edit_schedule(call.path["schedule"], steps))


async def cancel_schedule(call: Call[None, None]) -> ScheduleOut:
    return schedule_out(await call.store.cancel_schedule(call.path["schedule"]))


async def list_plans(call: Call[None, None]) -> PlanList:
    return PlanList([plan_out(p) for p in await call.store.list_plans()])


async def get_plan(call: Call[None, None]) -> PlanOut:
    return plan_out(await call.store.get_plan(call.path["feature"]))


async def create_plan(call: Call[None, PlanBody]) -> PlanOut:
    body = call.body
    steps = [
        PlanStep(
            s.proportion,
            None
            if s.hold_seconds is None
            else hold_from_seconds(s.hold_seconds, f"steps[{i}].hold_seconds"),
        )
        for i, s in enumerate(body.steps)
    ]
    start = None if body.start is None else parse_instant(body.start, "start")
    return plan_out(await call.store.create_plan(call.path["feature"], body.variant, steps, start))


async def rm_plan(call: Call[None, None]) -> Success:
    await call.store.rm_plan(call.path["feature"])
    return Success()


async def pause_plan(call: Call[PauseQuery, None]) -> PlanOut:
    return plan_out(await call.store.pause_plan(call.path["feature"], call.query.reason))


async def resume_plan(call: Call[None, None]) -> PlanOut:
    return plan_out(await call.store.resume_plan(call.path["feature"]))


async def rollback_plan(call: Call[ToStepQuery, None]) -> PlanOut:
    to_step = -1 if call.query.to_step is None else call.query.to_step
    return plan_out(await call.store.rollback_plan(call.path["feature"], to_step))


async def skip_plan(call: Call[ToStepQuery, None]) -> PlanOut:
    return plan_out(await call.store.skip_plan(call.path["feature"], call.query.to_step))


PLAN_MOVE_ERRORS = (e.PlanNotFound, e.PlanStateConflict)

OPERATIONS = (
    Operation("GET", "/v1/schedules", list_schedules, ScheduleList,
              "List scheduled changes", "delivery"),
    Operation("GET", SCHEDULE, get_schedule, ScheduleOut, "Get a schedule and its steps",
              "delivery", errors=(e.ScheduleNotFound,)),
    Operation("POST", SCHEDULE, create_schedule, ScheduleOut, "Schedule changes", "delivery",
              201, body=ScheduleBody, errors=(e.ScheduleExists, e.ValidationError),
              description="Each step is applied by an admin server when due, as one write by "
              "actor schedule:NAME; instants are RFC 3339 with an offset."),
    Operation("PUT", SCHEDULE, edit_schedule, ScheduleOut,
              "Replace a schedule's pending steps", "delivery", body=ScheduleBody,
              errors=(e.ScheduleNotFound, e.ValidationError),
              description="In one write: a replaced step never fires at its old instant."),
    Operation("DELETE", SCHEDULE, cancel_schedule, ScheduleOut,
              "Cancel a schedule's pending steps", "delivery", errors=(e.ScheduleNotFound,)),
    Operation("GET", "/v1/plans", list_plans, PlanList, "List release plans", "delivery"),
    Operation("GET", PLAN, get_plan, PlanOut, "Get a feature's release plan", "delivery",
              errors=(e.PlanNotFound,)),
    Operation("POST", PLAN, create_plan, PlanOut, "Create a release plan", "delivery", 201,
              body=PlanBody,
              errors=(e.PlanExists, e.FeatureNotFound, e.VariantNotFound, e.ValidationError,
                      e.InvalidRolloutProportion),
              description="The rollout of the variant ramps through the steps (increasing "
              "proportions; each but the last holds hold_seconds), one write per step."),
    Operation("DELETE", PLAN, rm_plan, Success, "Remove a release plan (its rollout stays)",
              "delivery", errors=(e.PlanNotFound,)),
    Operation("POST", PLAN + "/pause", pause_plan, PlanOut, "Pause a release plan",
              "delivery", query=PauseQuery, errors=(e.PlanNotFound,),
              description="Nothing is written unless the plan is active."),
    Operation("POST", PLAN + "/resume", resume_plan, PlanOut, "Resume a release plan",
              "delivery", errors=PLAN_MOVE_ERRORS,
              description="The current step's hold starts again now."),
    Operation("POST", PLAN + "/rollback", rollback_plan, PlanOut,
              "Roll a release plan back to an earlier step", "delivery", query=ToStepQuery,
              errors=PLAN_MOVE_ERRORS,
              description="to_step: an earlier step's index (omitted or -1: 0%). The rollout "
              "gets exactly that step's buckets; the plan pauses."),
    Operation("POST", PLAN + "/skip", skip_plan, PlanOut, "Skip a release plan ahead",
              "delivery", query=ToStepQuery, errors=PLAN_MOVE_ERRORS,
              description="to_step: a later step's index (omitted: the next)."),
)  # fmt: skip
