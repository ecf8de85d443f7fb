"""The dashboard's pages (GET): each reads through `AsyncFlaggery` or the live snapshot."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.engine import Snapshot
from flaggery.engine.config import Config
from flaggery.engine.model import DISABLE, AbTest
from flaggery.engine.reach import FeatureReach
from flaggery.errors import FlaggeryError, NotFound, ValidationError
from flaggery.store.records import AbTestRecord, RolloutRecord
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.validation import MIN_SUBJECT_ID
from flaggery.ui.abtest_form import FieldError, check_counts, draft
from flaggery.ui.render import PAGE_SIZE, Ui, bars, page_of
from flaggery.ui.revert_page import restore_page, revert_page
from flaggery.ui.rule_form import OPERATOR_CHOICES, rows_of

__all__ = ["routes", "share", "status_of"]


def routes(ui: Ui) -> list[Route]:
    """The GET routes, relative to /ui."""

    def route(path: str, handler: Callable[[Ui, Request], Awaitable[Response]]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await handler(ui, request)

        return Route(path, endpoint, methods=["GET"])

    return [
        route("/features", features),
        route("/features/{name:path}/preview", preview),
        route("/features/{name:path}/restore", restore_page),
        route("/features/{name:path}", feature),
        route("/abtests", abtests),
        route("/abtests/form", abtest_form),
        route("/abtests/{name:path}", abtest),
        route("/groups", groups),
        route("/groups/{name:path}", group),
        route("/subjects", subjects),
        route("/buckets", buckets),
        route("/history", history),
        route("/history/{revision}/revert", revert_page),
        route("/health", health),
        route("/signin", signin),
    ]


def _int(request: Request, key: str, default: int) -> int:
    """The query's ``key`` (a page or revision: 0 or more); ``default`` when absent or not a
    whole number (flaggery.decimal_text): a link to a page, not an input to refuse."""
    try:
        return parse_decimal(request.query_params.get(key, "").strip(), key)
    except DecimalTextError:
        return default


def _listing(request: Request, items: Sequence[Any]) -> dict[str, Any]:
    """The request's ``page`` of ``items`` (render.page_of)."""
    return page_of(items, _int(request, "page", 1))


def _search(request: Request, names: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """The ``q`` search (part of a name, any case) and the request's page of the matches."""
    query = request.query_params.get("q", "").strip()
    return query, _listing(request, [n for n in names if query.lower() in n.lower()])


def share(weight: int, total: int) -> float:
    """``weight`` as a fraction of ``total`` (0 when there is no weight)."""
    return weight / total if total else 0.0


def status_of(test: AbTestRecord | AbTest, now: datetime) -> str:
    """scheduled, live or ended, as the snapshot serves it (the end is inclusive)."""
    if now < test.start:
        return "scheduled"
    return "live" if now <= test.end else "ended"


async def _rollout(store: AsyncFlaggery, feature: str) -> RolloutRecord | None:
    try:
        return await store.get_rollout(feature)
    except NotFound:
        return None


def _tests_by_feature(config: Config, now: datetime) -> defaultdict[str, list[tuple[str, str]]]:
    """feature -> [(test name, "live" or "scheduled")] for the tests that have not ended."""
    touching: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for test in config.abtests.values():
        status = status_of(test, now)
        if status != "ended" and test.groups:
            for feature in test.groups[0].variants:
                touching[feature].append((test.name, status))
    return touching


async def features(ui: Ui, request: Request, **context: Any) -> Response:
    """The list reads the live snapshot's configuration (one query, for the bucket weights):
    this server catches its snapshot up after each of its writes, so it shows them."""
    services = ui.services(request)
    config = services.evaluator.snapshot.config
    query, listing = _search(request, sorted(config.features))
    buckets = await services.store.get_buckets()
    weights = {bucket.id: bucket.weight for bucket in buckets.buckets}
    tests = _tests_by_feature(config, services.store.database.clock())
    snapshot = services.evaluator.snapshot
    rows = []
    for name in listing["items"]:
        rollout = config.rollouts.get(name)
        rows.append(
            {
                "feature": config.features[name],
                "rollout": rollout,
                "effective": sum(weights.get(b, 0) for b in rollout.buckets) if rollout else 0,
                "total": buckets.total_weight,
                # What the rollout serves after tests, overrides and the kill switch.
                "serves": _rollout_serves(snapshot.reach(name)) if rollout else None,
                "tests": tests[name],
            }
        )
    return ui.page(
        request,
        "features.html",
        context.pop("status", 200),
        listing=listing,
        rows=rows,
        q=query,
        share=share,
        **context,
    )


def _rollout_serves(reach: FeatureReach) -> float:
    """The share of registered subjects the rollout serves after precedence."""
    served = sum(r.subjects for r in reach.reaches if r.via.source == "rollout")
    return share(served, reach.subjects)


async def feature(ui: Ui, request: Request, **context: Any) -> Response:
    services = ui.services(request)
    store = services.store
    name = request.path_params["name"]
    revision = await store.revision()  # read first: the forms' condition (ui/actions.py)
    record = await store.get_feature(name)
    rollout = await _rollout(store, name)
    total = (await store.get_buckets()).total_weight
    preview = context.pop("preview", None)
    snapshot = services.evaluator.snapshot
    config = snapshot.config
    now = store.database.clock()
    return ui.page(
        request,
        "feature.html",
        context.pop("status", 200),
        feature=record,
        reach=snapshot.reach(name),
        tests=[
            (config.abtests[test], status) for test, status in _tests_by_feature(config, now)[name]
        ],
        overrides=[
            (group.name, group.overrides[name])
            for group in sorted(config.groups.values(), key=lambda g: g.name)
            if name in group.overrides
        ],
        # The disabling variant has no value: clients use their own default.
        valued=[variant for variant in record.variants if variant != DISABLE],
        rollout=rollout,
        total=total,
        share=share,
        preview=preview,
        revision=revision,
        **context,
    )


async def preview(ui: Ui, request: Request) -> Response:
    """The effective share a rollout would land on at ``percent``, before it is applied."""
    store = ui.services(request).store
    total = (await store.get_buckets()).total_weight
    weight, problem = None, None
    try:
        percent = float(request.query_params.get("percent", ""))
        weight = await store.preview_rollout_proportion(request.path_params["name"], percent / 100)
    except ValueError:
        problem = "Type a percentage from 0 to 100."
    except FlaggeryError as refused:
        problem = refused.message
    return ui.page(
        request,
        "partials/preview.html",
        preview=weight,
        preview_error=problem,
        total=total,
        share=share,
    )


async def abtests(ui: Ui, request: Request, **context: Any) -> Response:
    """Tests by status from the live snapshot's configuration; one query (bucket weights)."""
    services = ui.services(request)
    snapshot = services.evaluator.snapshot
    config = snapshot.config
    now = services.store.database.clock()  # the clock writes use: tests move it
    buckets = await services.store.get_buckets()
    weights = {bucket.id: bucket.weight for bucket in buckets.buckets}
    by_status: dict[str, list[AbTest]] = {"live": [], "scheduled": [], "ended": []}
    for name in sorted(config.abtests):
        test = config.abtests[name]
        by_status[status_of(test, now)].append(test)
    return ui.page(
        request,
        "abtests.html",
        context.pop("status", 200),
        by_status=by_status,
        total=buckets.total_weight,
        weight_of=lambda group: sum(weights.get(b, 0) for b in group.buckets),
        share=share,
        features=sorted(config.features),
        variants=_variant_names(config),
        now_utc=now.strftime("%Y-%m-%d %H:%M"),
        groups=draft(context.get("form")),
        revision=snapshot.revision,
        **context,
    )


async def abtest(ui: Ui, request: Request) -> Response:
    """One test: its dates (UTC, and local in the browser), groups, state and health panel
    (this process's accepted exposures are written first, as the health route does)."""
    services = ui.services(request)
    name = request.path_params["name"]
    record = await services.store.get_abtest(name)
    await services.exposures.flush()
    health = await services.store.abtest_health(name)
    now = services.store.database.clock()
    return ui.page(
        request, "abtest.html", test=record, test_status=status_of(record, now), health=health
    )


async def abtest_form(ui: Ui, request: Request) -> Response:
    """The new-test form again, with what was typed and one more group or feature row
    (``add``: group or pair); htmx swaps it in place."""
    config = ui.services(request).evaluator.snapshot.config
    form = request.query_params
    try:
        check_counts(form)
    except FieldError as refused:
        raise refused.error from None
    return ui.page(
        request,
        "partials/abtest_form.html",
        form=form,
        groups=draft(form, form.get("add")),
        features=sorted(config.features),
        variants=_variant_names(config),
        now_utc=ui.services(request).store.database.clock().strftime("%Y-%m-%d %H:%M"),
    )


def _variant_names(config: Config) -> list[str]:
    """Every variant name of every feature, once each: the form's choices for a variant."""
    return sorted({v for feature in config.features.values() for v in feature.variants})


async def groups(ui: Ui, request: Request, **context: Any) -> Response:
    store = ui.services(request).store
    query, listing = _search(request, await store.list_groups())
    return ui.page(
        request, "groups.html", context.pop("status", 200), listing=listing, q=query, **context
    )


async def group(ui: Ui, request: Request, **context: Any) -> Response:
    store = ui.services(request).store
    revision = await store.revision()  # read first: the forms' condition (ui/actions.py)
    record = await store.get_group(request.path_params["name"])
    members = _listing(request, sorted(record.subjects))
    return ui.page(
        request,
        "group.html",
        context.pop("status", 200),
        group=record,
        members=members,
        features=await store.list_features(),
        rule_rows=rows_of(record.rule),
        operators=OPERATOR_CHOICES,
        revision=revision,
        **context,
    )


async def subjects(ui: Ui, request: Request, **context: Any) -> Response:
    evaluator = ui.services(request).evaluator
    if "key" in request.query_params:
        return _try_context(ui, request)
    if context:  # a refused paste: the page again with the message and what was pasted
        return ui.page(
            request,
            "subjects.html",
            context.pop("status", 200),
            raw="",
            listing=_subject_listing(evaluator.snapshot, request),
            **context,
        )
    raw = request.query_params.get("id", "").strip()
    explanation, error = None, None
    if raw:
        try:
            sub_id = parse_decimal(raw, "A subject id", low=MIN_SUBJECT_ID)
            explanation = evaluator.explain(sub_id)
            weight = evaluator.subject(sub_id).weight
        except DecimalTextError as refused:
            error = str(refused)
        except FlaggeryError as refused:
            error = refused.message
    status = 200 if error is None else 404
    return ui.page(
        request,
        "subjects.html",
        status,
        raw=raw,
        explanation=explanation,
        weight=weight if explanation else None,
        errors={"id": error} if error else {},
        listing=_subject_listing(evaluator.snapshot, request),
    )


def _subject_listing(snapshot: Snapshot, request: Request) -> dict[str, Any]:
    """A page of subjects in id order, from the id typed in ``from`` (a search that stays
    fast at ten million subjects: a binary search, not a scan), with weight, bucket, groups."""
    ids = snapshot.subject_ids()
    start = _int(request, "from", 0)
    first = bisect_left(ids, start) if start else 0
    shown = [snapshot.subject(sid) for sid in ids[first : first + PAGE_SIZE]]
    return {
        "items": shown,
        "start": start,
        "total": len(ids),
        "next": ids[first + PAGE_SIZE] if first + PAGE_SIZE < len(ids) else None,
    }


def _try_context(ui: Ui, request: Request) -> Response:
    """What a targeting key gets with a context (one NAME=VALUE a line), and why."""
    key = request.query_params.get("key", "")
    text = request.query_params.get("context", "")
    context = {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in text.splitlines())
        if name.strip()
    }
    tried, error = None, None
    try:
        tried = ui.services(request).evaluator.explain_key(key, context)
    except FlaggeryError as refused:
        error = refused.message
    return ui.page(
        request,
        "subjects.html",
        200 if error is None else 400,
        raw="",
        key=key,
        context_text=text,
        tried=tried,
        errors={"key": error} if error else {},
    )


async def buckets(ui: Ui, request: Request, **context: Any) -> Response:
    services = ui.services(request)
    record = await services.store.get_buckets()
    weights = [bucket.weight for bucket in record.buckets]
    count = services.evaluator.snapshot.subject_count
    return ui.page(
        request,
        "buckets.html",
        context.pop("status", 200),
        # The seed's guidance: about 10 buckets for a few hundred subjects, 100 beyond.
        suggested=10 if count < 1_000 else 100,
        buckets=record,
        bars=bars(weights),
        subjects=services.evaluator.snapshot.subject_count,
        lightest=min(weights, default=0),
        heaviest=max(weights, default=0),
        first_id=record.buckets[0].id if record.buckets else None,
        last_id=record.buckets[-1].id if record.buckets else None,
        **context,
    )


HISTORY_PAGE = 50


async def history(ui: Ui, request: Request) -> Response:
    store = ui.services(request).store
    filters = {
        key: request.query_params.get(key, "").strip() or None
        for key in ("feature", "group", "test")
    }
    subject_text = request.query_params.get("subject", "").strip()
    head = await store.revision()
    before = _int(request, "before", head + 1)
    errors: dict[str, str] = {}
    subject = None
    if subject_text:
        try:
            subject = parse_decimal(subject_text, "A subject id", low=MIN_SUBJECT_ID)
        except DecimalTextError as refused:
            errors["subject"] = str(refused)
    changes: list[Any] = []
    older = None
    try:
        page = await store.history(before, HISTORY_PAGE, subject=subject, **filters)
        changes, older = page.changes, page.older
    except ValidationError as refused:
        errors["filter"] = refused.message
    partial = request.headers.get("hx-request") and request.query_params.get("rows")
    template = "partials/history_rows.html" if partial else "history.html"
    shown = {**filters, "subject": subject_text}
    return ui.page(
        request,
        template,
        changes=changes,
        filters=shown,
        query=urlencode({key: value for key, value in shown.items() if value}),
        head=head,
        # The newest page follows the change stream (flaggery.ui.live); an older one stays put.
        live="before" not in request.query_params,
        older=older,
        errors=errors,
    )


async def health(ui: Ui, request: Request) -> Response:
    return ui.page(request, "health.html", evaluator=ui.services(request).evaluator)


async def signin(ui: Ui, request: Request, **context: Any) -> Response:
    return ui.page(request, "signin.html", context.pop("status", 200), **context)
