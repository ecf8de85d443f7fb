"""The dashboard's Delivery page: scheduled changes (list, create, edit, cancel; an A/B test's
start with its groups, its stop from the list of tests) and release plans (list, create,
pause, resume, rollback, skip, remove), each form one store call made as the signed-in
token. Instants show in UTC and, with the page's script, in the browser's time; plan holds
show in the words the plan form takes ("1 d", "1 h 30 min")."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flaggery.decimal_text import DecimalTextError, excerpt, parse_decimal, percent
from flaggery.errors import ValidationError
from flaggery.store.plans import PlanStep, hold_words
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.scheduled_operations import OPERATIONS
from flaggery.store.schedules import PENDING, ScheduledStep, ScheduleRecord
from flaggery.store.validation import hold_from_seconds
from flaggery.ui.abtest_form import draft, parse_groups
from flaggery.ui.actions import form_post
from flaggery.ui.render import Ui

__all__ = ["parse_plan_steps", "routes"]

PAGE = "/delivery"
_PART = r"(\d+(?:\.\d+)?)\s*(s|min|m|h|d)"
_HOLD = re.compile(rf"(?:{_PART}\s*)+")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
MAX_EDIT_ROWS = 100
"""Rows an edit form may send (flaggery.store.schedules.MAX_SCHEDULE_STEPS)."""


def routes(ui: Ui) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        return await page(ui, request)

    return [
        Route(PAGE, endpoint, methods=["GET"]),
        form_post(ui, PAGE + "/schedules", _create_schedule, page, "schedule"),
        form_post(ui, PAGE + "/schedules/abtest", _schedule_abtest, page, "abtest"),
        form_post(ui, PAGE + "/schedules/{name:path}/cancel", _cancel, page, "schedules"),
        form_post(ui, PAGE + "/schedules/{name:path}/edit", _edit_schedule, page, "edit"),
        form_post(ui, PAGE + "/plans", _create_plan, page, "plan"),
        form_post(ui, PAGE + "/plans/{name:path}/move", _move_plan, page, "plans"),
    ]


async def page(ui: Ui, request: Request, **context: Any) -> Response:
    services = ui.services(request)
    store = services.store
    config = services.evaluator.snapshot.config
    form = context.get("form")
    typed_groups = form is not None and form.get("kind") == "start_abtest"
    return ui.page(
        request,
        "delivery.html",
        context.pop("status", 200),
        schedules=await store.list_schedules(),
        plans=await store.list_plans(),
        operations=[op for op in OPERATIONS if op != "start_abtest"],
        abtests=await store.list_abtests(),
        features=sorted(config.features),
        variants=sorted({v for f in config.features.values() for v in f.variants}),
        groups=draft(form if typed_groups else {"pairs": "2"}),
        pending=_pending,
        as_json=_as_json,
        hold_words=hold_words,
        parse_instant=datetime.fromisoformat,
        now=store.database.clock(),
        **context,
    )


async def _create_schedule(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    operation = _text(form, "operation")
    arguments: dict[str, object] = {}
    for name in ("feature", "variant", "group", "test"):
        if _text(form, name):
            arguments[name] = _text(form, name)
    if _text(form, "percent"):
        arguments["proportion"] = _percent(_text(form, "percent"))
    if operation == "kill_switch":
        arguments["on"] = _text(form, "on") != "off"
    at = _instant(_text(form, "at"))
    await store.create_schedule(_text(form, "name"), [ScheduledStep(at, operation, arguments)])
    return "/ui" + PAGE


async def _schedule_abtest(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    """Schedule an A/B test's start: its name, end and groups (the A/B test form's fields,
    flaggery.ui.abtest_form), started by the step at its instant."""
    groups, proportions = parse_groups(form)
    end = _instant(_text(form, "end"), "end")
    arguments: dict[str, object] = {"test": _text(form, "test"), "end": end, "groups": groups}
    if proportions is not None:
        arguments["proportions"] = proportions
    at = _instant(_text(form, "at"))
    await store.create_schedule(_text(form, "name"), [ScheduledStep(at, "start_abtest", arguments)])
    return "/ui" + PAGE


async def _edit_schedule(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    """Replace the schedule's pending steps by the form's rows (``at<i>``, ``operation<i>``,
    ``arguments<i>`` as a JSON object, ``drop<i>``; a row without instant nor arguments is
    ignored): one edit_schedule write, so a moved step can no longer fire at its old time."""
    try:
        rows = min(parse_decimal(_text(form, "rows") or "0", "rows"), MAX_EDIT_ROWS)
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None
    steps = []
    for i in range(rows):
        at, arguments = _text(form, f"at{i}"), _text(form, f"arguments{i}")
        if _text(form, f"drop{i}") or not (at or arguments):
            continue
        steps.append(
            ScheduledStep(_instant(at), _text(form, f"operation{i}"), _object(arguments, i))
        )
    await store.edit_schedule(request.path_params["name"], steps)
    return "/ui" + PAGE


async def _cancel(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    await store.cancel_schedule(request.path_params["name"])
    return "/ui" + PAGE


async def _create_plan(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    steps = parse_plan_steps(_text(form, "steps"))
    start = _instant(_text(form, "start")) if _text(form, "start") else None
    await store.create_plan(_text(form, "feature"), _text(form, "variant"), steps, start)
    return "/ui" + PAGE


async def _move_plan(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    feature = request.path_params["name"]
    action = _text(form, "action")
    if action == "pause":
        await store.pause_plan(feature, "paused from the dashboard")
    elif action == "resume":
        await store.resume_plan(feature)
    elif action in ("rollback", "skip"):
        step = _step_index(_text(form, "step"))
        if action == "rollback":
            await store.rollback_plan(feature, -1 if step is None else step)
        else:
            await store.skip_plan(feature, step)
    elif action == "remove":
        await store.rm_plan(feature)
    else:
        raise ValidationError(f"Unknown plan action {excerpt(action)}.")
    return "/ui" + PAGE


def parse_plan_steps(text: str) -> list[PlanStep]:
    """``"1% 1h, 5% 1d, 25% 1 h 30 min, 100%"``: a percentage and a hold (in s, min, h, d,
    one or more parts) per step, the last without a hold. ValidationError says which step
    is malformed."""
    steps = []
    for number, item in enumerate(filter(None, (i.strip() for i in text.split(","))), start=1):
        share, _, hold_text = item.partition("%")
        value = percent(share.strip())
        hold = _HOLD.fullmatch(hold_text.strip())
        if value is None or (hold_text.strip() and hold is None):
            raise ValidationError(
                f"Step {number} ({excerpt(item)}) must read like '5% 1d' (a percentage, then "
                "a hold in s, min, h or d; the last step without one)."
            )
        parts = re.findall(_PART, hold_text) if hold is not None else []
        seconds = sum(float(n) * _UNITS[unit] for n, unit in parts) if parts else None
        steps.append(
            PlanStep(
                value / 100,
                None if seconds is None else hold_from_seconds(seconds, f"Step {number}'s hold"),
            )
        )
    return steps


def _pending(schedule: ScheduleRecord) -> list[tuple[int, datetime, str, dict[str, object]]]:
    """The schedule's pending steps as the edit form's rows: (row, at in UTC, operation,
    arguments)."""
    steps = [s for s in schedule.steps if s.status == PENDING]
    return [(i, s.at, s.operation, s.arguments) for i, s in enumerate(steps)]


def _as_json(arguments: dict[str, object]) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def _object(text: str, row: int) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValidationError(
            f"Step {row + 1}: the arguments are a JSON object, e.g. "
            f'{{"feature": "checkout", "on": true}}; got {excerpt(text)}.'
        )
    return value


def _instant(text: str, what: str = "instant") -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(
            f"Give the {what} with its offset, e.g. 2030-04-01T09:00:00Z or "
            f"2030-04-01T11:00:00+02:00; got {excerpt(text)}."
        )
    return moment


def _step_index(text: str) -> int | None:
    """The form's step number (1 for the first; 0 for 0%) as the store's index."""
    if not text:
        return None
    try:
        return parse_decimal(text, "The step") - 1
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None


def _percent(text: str) -> float:
    value = percent(text)
    if value is None:
        raise ValidationError(f"The rollout is a percentage from 0 to 100, got {excerpt(text)}.")
    return round(value / 100, 6)


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""
