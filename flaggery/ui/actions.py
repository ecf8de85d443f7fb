"""The dashboard's writes (POST): each is one `AsyncFlaggery` call, the REST API's, made as
the signed-in token (its name is the change's actor). Every form carries the CSRF token; a
refused write re-renders its page with the message beside the field, at the REST status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flaggery.decimal_text import DecimalTextError, excerpt, parse_decimal, percent
from flaggery.engine.model import DISABLE
from flaggery.errors import (
    EntityChanged,
    FlaggeryError,
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthorized,
    ValidationError,
    VariantExists,
)
from flaggery.store.actor import acting_as
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.validation import MIN_SUBJECT_ID
from flaggery.ui import confirmations, pages
from flaggery.ui.abtest_form import FieldError, parse_groups
from flaggery.ui.confirmations import Effect, Unconfirmed, ask
from flaggery.ui.paste import pasted_ids, pasted_subjects, pasted_text
from flaggery.ui.render import Ui
from flaggery.ui.revert_page import restore_feature, restore_page, revert_change, revert_page
from flaggery.ui.rule_form import rule_of
from flaggery.ui.session import CSRF_FIELD, CSRF_HEADER, check_csrf, sign_in
from flaggery.ui.values import typed_value

__all__ = ["Write", "form_post", "routes"]

Write = Callable[[AsyncFlaggery, FormData, Request], Awaitable[str | None]]
"""A write: makes its store call(s), returns where to go next (None: back where it came)."""
Page = Callable[..., Awaitable[Response]]


def form_post(ui: Ui, path: str, write: Write, page: Page, field: str) -> Route:
    """A POST route making `write`, guarded as every dashboard write is (CSRF, an admin
    token, the signed-in token as actor); a refusal re-renders `page` with the message
    beside `field`."""

    async def endpoint(request: Request) -> Response:
        return await _run(ui, request, write, page, field)

    return Route(path, endpoint, methods=["POST"])


def routes(ui: Ui) -> list[Route]:
    """The POST routes, relative to /ui: one per write, each guarded the same way."""

    def post(path: str, write: Write, page: Page, field: str) -> Route:
        return form_post(ui, path, write, page, field)

    async def signin(request: Request) -> Response:
        return await _signin(ui, request)

    async def signout(request: Request) -> Response:
        return await _signout(ui, request)

    return [
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        post("/features", _add_feature, pages.features, "name"),
        post("/features/{name:path}/variants", _add_variant, pages.feature, "variant"),
        post(
            "/features/{name:path}/variants/remove",
            _confirmed("rm_variant", _rm_variant),
            pages.feature,
            "variant",
        ),
        post("/features/{name:path}/default", _set_default, pages.feature, "default"),
        post("/features/{name:path}/value", _set_value, pages.feature, "value"),
        post("/features/{name:path}/rollout", _rollout, pages.feature, "rollout"),
        post(
            "/features/{name:path}/rollout/remove",
            _confirmed("rm_rollout", _rm_rollout),
            pages.feature,
            "rollout",
        ),
        post("/features/{name:path}/kill", _confirmed("kill", _kill), pages.feature, "kill"),
        post("/features/{name:path}/unkill", _confirmed("unkill", _unkill), pages.feature, "kill"),
        post(
            "/features/{name:path}/remove",
            _confirmed("rm_feature", _rm_feature),
            pages.feature,
            "remove",
        ),
        post("/buckets", _add_buckets, pages.buckets, "amount"),
        post("/subjects", _add_subjects, pages.subjects, "ids"),
        post("/abtests", _add_abtest, pages.abtests, "create"),
        post(
            "/abtests/{name:path}/stop",
            _confirmed("stop_abtest", _stop_abtest),
            pages.abtests,
            "abtest",
        ),
        post(
            "/abtests/{name:path}/remove",
            _confirmed("rm_abtest", _rm_abtest),
            pages.abtests,
            "abtest",
        ),
        post("/groups", _add_group, pages.groups, "name"),
        post("/groups/{name:path}/members", _add_member, pages.group, "member"),
        post(
            "/groups/{name:path}/members/paste",
            _confirmed("add_members", _add_members),
            pages.group,
            "members",
        ),
        post(
            "/groups/{name:path}/members/remove",
            _confirmed("rm_member", _rm_member),
            pages.group,
            "member",
        ),
        post("/groups/{name:path}/overrides", _add_override, pages.group, "override"),
        post(
            "/groups/{name:path}/overrides/remove",
            _confirmed("rm_override", _rm_override),
            pages.group,
            "override",
        ),
        post("/groups/{name:path}/rule", _set_rule, pages.group, "rule"),
        post(
            "/groups/{name:path}/rule/remove", _confirmed("rm_rule", _rm_rule), pages.group, "rule"
        ),
        post(
            "/groups/{name:path}/remove", _confirmed("rm_group", _rm_group), pages.group, "remove"
        ),
        post("/history/{revision}/revert", revert_change, revert_page, "revert"),
        post("/features/{name:path}/restore", restore_feature, restore_page, "revert"),
    ]


async def _run(ui: Ui, request: Request, write: Write, page: Page, field: str) -> Response:
    form = await _form(request)
    try:
        return await _run_form(ui, request, form, write, page, field)
    finally:
        await form.close()  # an uploaded file's temporary copy


async def _run_form(  # noqa: PLR0913 - _run's arguments and the form it read
    ui: Ui, request: Request, form: FormData, write: Write, page: Page, field: str
) -> Response:
    check_csrf(request, _csrf(request, form))
    viewer = ui.viewer(request)
    if not viewer.can_write:
        raise Forbidden(f"The token {viewer.name!r} is a reader: it cannot change anything.")
    services = ui.services(request)
    try:
        with acting_as(viewer.name):
            target = await write(services.store, form, request)
    except Unconfirmed as unconfirmed:
        return _confirmation(ui, request, form, unconfirmed.effect)
    except (FlaggeryError, FieldError) as refused:
        beside, error = (
            (refused.field, refused.error) if isinstance(refused, FieldError) else (field, refused)
        )
        status = ui.status_for(type(error))
        if status >= 500:
            raise
        message = error.message
        if isinstance(error, EntityChanged):
            message += " Not saved: the page now shows the current state; submit again to apply."
        await services.catch_up()  # a new rollout's earlier steps may stand
        return await page(ui, request, status=status, errors={beside: message}, form=form)
    await services.catch_up()  # the next page, read from the snapshot, shows the write
    return RedirectResponse(target or _back(request), 303)


def _confirmed(action: str, write: Write) -> Write:
    """`write`, made only when the form says ``confirm=on`` (once: "off" then "on" is not a
    confirmation); otherwise the confirmation page naming its effect
    (flaggery.ui.confirmations), whatever sent the post."""

    async def confirmed(store: AsyncFlaggery, form: FormData, request: Request) -> str | None:
        ask(request.app.state.services.evaluator.snapshot, action, request, form)
        return await write(store, form, request)

    return confirmed


def _confirmation(ui: Ui, request: Request, form: FormData, effect: Effect) -> Response:
    """The page asking to confirm: the effect, and the same form again with ``confirm=on``
    and the revision the effect was counted at."""
    snapshot = ui.services(request).evaluator.snapshot
    kept = [
        (key, value)
        for key, value in form.multi_items()
        if key not in ("csrf", "confirm", "revision", *effect.fields) and isinstance(value, str)
    ]
    kept += list(effect.fields.items())
    return ui.page(
        request,
        "confirm.html",
        effect=effect,
        action=request.url.path,
        fields=kept,
        revision=snapshot.revision,
        back=_back(request),
    )


async def _form(request: Request) -> FormData:
    """The posted form; a body Starlette cannot parse (a broken multipart) is a
    ValidationError in the usual envelope, not a bare HTTP error, and so is a URL-encoded body
    that is not UTF-8 once percent-decoded (Starlette reads ``caf%E9`` as ``caf\ufffd``, a
    name or value other bytes would share; the path and query are checked by the guard)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = await request.body()  # kept: request.form() parses the same bytes
        if b"%" in body:
            try:
                unquote_to_bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError(
                    "The form is not UTF-8 once percent-decoded: send it as UTF-8."
                ) from None
    try:
        return await request.form()
    except HTTPException as unreadable:
        raise ValidationError(f"The form could not be read: {unreadable.detail}") from None


def _csrf(request: Request, form: FormData) -> str | None:
    sent = form.get(CSRF_FIELD)
    return sent if isinstance(sent, str) else request.headers.get(CSRF_HEADER)


def _back(request: Request) -> str:
    path = request.url.path
    for suffix in (
        "/members/paste",
        "/variants/remove",
        "/variants",
        "/default",
        "/value",
        "/rollout/remove",
        "/rollout",
        "/kill",
        "/unkill",
        "/members/remove",
        "/members",
        "/overrides/remove",
        "/overrides",
        "/stop",
        "/remove",
    ):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _subject_id(form: FormData, key: str) -> int:
    """The form's subject id, by the REST path's rule (flaggery.decimal_text)."""
    try:
        return parse_decimal(_text(form, key), "A subject id", low=MIN_SUBJECT_ID)
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None


def _percent(form: FormData) -> float:
    text = _text(form, "percent")
    value = percent(text)
    if value is None:
        raise ValidationError(f"The rollout is a percentage from 0 to 100, got {excerpt(text)}.")
    return round(value / 100, 6)


def _revision(form: FormData) -> int | None:
    """The revision the form was rendered from (its hidden ``revision`` field): the write is
    refused if its entity changed after it. None for a post without one (a script)."""
    text = _text(form, "revision")
    if not text:
        return None
    try:
        return parse_decimal(text, "The form's revision")
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


async def _add_feature(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    name = _text(form, "name")
    await store.add_feature(name)
    return "/ui/features/" + quote(name, safe="")


async def _add_variant(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    """Typing the reserved ``__DISABLE__`` adds the disabling variant ("Off (disabled)")."""
    variant, make_default = _text(form, "variant"), form.get("make_default") == "on"
    if variant == DISABLE:
        await store.add_disabling_variant(_name(request), make_default, if_revision=_revision(form))
        return
    await store.add_variant(variant, _name(request), make_default, if_revision=_revision(form))


async def _rm_variant(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.rm_variant(_text(form, "variant"), _name(request), if_revision=_revision(form))


async def _set_default(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    """ "Off (disabled)" (``__DISABLE__``) as the default adds the disabling variant when the
    feature has none, in the same write."""
    feature, variant, seen = _name(request), _text(form, "variant"), _revision(form)
    if variant == DISABLE:
        try:
            await store.add_disabling_variant(feature, make_default=True, if_revision=seen)
            return
        except VariantExists:
            pass  # the feature has it: only the default changes
    await store.set_default_feature_variant(feature, variant, if_revision=seen)


async def _set_value(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    """The REST route's store call; the value is typed by the form's ``type``."""
    value = typed_value(_text(form, "type"), form.get("value"))
    await store.set_variant_value(
        _text(form, "variant"), _name(request), value, if_revision=_revision(form)
    )


async def _rollout(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    """Create the rollout if there is none, else move it (variant and proportion at once):
    one write, one revision, either way."""
    feature, variant = _name(request), _text(form, "variant") or None
    proportion = _percent(form) if _text(form, "percent") else None
    seen = _revision(form)
    audience = _text(form, "audience") if "audience" in form else None  # "": no audience
    try:
        await store.get_rollout(feature)
    except NotFound:
        if variant is None:
            raise ValidationError("Choose the variant to roll out.") from None
        await store.add_rollout(
            variant,
            feature,
            proportion=proportion or 0.0,
            audience=audience or None,
            if_revision=seen,
        )
        return
    await store.set_rollout(feature, variant, proportion, audience, if_revision=seen)


async def _rm_rollout(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.rm_rollout(_name(request), if_revision=_revision(form))


async def _kill(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    # Unconditional: firing it again is harmless and loses nothing (unkill restores all),
    # and in an incident it must never be refused because the page is a minute old.
    await store.kill_switch(_name(request))


async def _unkill(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.unkill(_name(request), if_revision=_revision(form))


async def _rm_feature(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    await store.rm_feature(_name(request), if_revision=_revision(form))
    return "/ui/features"


async def _add_abtest(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    """Start empty means now; times are ISO 8601, UTC without an offset."""
    groups, proportions = parse_groups(form)
    await store.add_abtest(
        _text(form, "name"), _time(form, "start"), _time(form, "end"), groups, proportions
    )


def _time(form: FormData, key: str) -> Any:
    text = _text(form, key)
    if not text:
        if key == "end":
            raise FieldError(key, "Give the end of the test.")
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(key, f"{key} is not a date and time: {text!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _stop_abtest(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    await store.stop_abtest(_name(request), if_revision=_revision(form))
    return "/ui/abtests"


async def _rm_abtest(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    await store.rm_abtest(_name(request), if_revision=_revision(form))
    return "/ui/abtests"


async def _add_buckets(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    try:
        amount = parse_decimal(_text(form, "amount"), "The number of buckets", low=1)
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None
    await store.increase_buckets(amount)


async def _add_subjects(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    """Previewed first (confirmations.add_subjects, with the bucket weights for where keyed
    lines go); lines with a targeting key go in through add_subjects_like_keys."""
    text = pasted_text(form, "ids")
    subjects = pasted_subjects(text)
    if form.getlist("confirm") != ["on"]:
        weights = {bucket.id: bucket.weight for bucket in (await store.get_buckets()).buckets}
        snapshot = request.app.state.services.evaluator.snapshot
        raise Unconfirmed(confirmations.add_subjects(snapshot, text, subjects, weights))
    if any(key is not None for _, _, key in subjects):
        await store.add_subjects_like_keys(subjects)
    else:  # PostgreSQL: by binary COPY, for pastes of millions
        await store.add_subjects((sid, weight) for sid, weight, _ in subjects)
    return "/ui/subjects"


async def _add_members(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.add_subjects_to_group(pasted_ids(pasted_text(form, "members")), _name(request))


async def _add_group(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    name = _text(form, "name")
    await store.add_group(name)
    return "/ui/groups/" + quote(name, safe="")


async def _add_member(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.add_subject_to_group(_subject_id(form, "subject"), _name(request))


async def _rm_member(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.rm_subject_from_group(_subject_id(form, "subject"), _name(request))


async def _add_override(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.add_group_override(
        _name(request), _text(form, "feature"), _text(form, "variant"), if_revision=_revision(form)
    )


async def _rm_override(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.rm_group_override(
        _name(request), _text(form, "feature"), if_revision=_revision(form)
    )


async def _set_rule(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.set_group_rule(_name(request), rule_of(form))


async def _rm_rule(store: AsyncFlaggery, form: FormData, request: Request) -> None:
    await store.rm_group_rule(_name(request))


async def _rm_group(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    await store.rm_group(_name(request), if_revision=_revision(form))
    return "/ui/groups"


async def _signin(ui: Ui, request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, _csrf(request, form))
    try:
        sign_in(request, ui.keyring, _text(form, "token"))
    except (Unauthorized, Forbidden, TooManyAttempts) as refused:
        status = ui.status_for(type(refused))
        response = await pages.signin(ui, request, status=status, errors={"token": refused.message})
        if isinstance(refused, TooManyAttempts):
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    return RedirectResponse("/ui/features", 303)


async def _signout(ui: Ui, request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, _csrf(request, form))
    request.session.clear()
    return RedirectResponse("/ui/signin", 303)
