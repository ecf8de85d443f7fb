"""History's revert: the preview page (GET) and the write (POST), one change at a time.

The preview is the store's own dry run (`AsyncFlaggery.preview_revert`: the revert's write,
rolled back), so the page shows exactly what the button does, or why it is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.errors import ChangeNotFound, RevertRefused, ValidationError
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.validation import MAX_SUBJECT_ID
from flaggery.ui.render import Ui

__all__ = ["restore_feature", "restore_page", "revert_change", "revert_page"]


def _revision(request: Request) -> int:
    try:
        return parse_decimal(
            request.path_params["revision"], "A revision", low=1, high=MAX_SUBJECT_ID
        )
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None


async def revert_page(ui: Ui, request: Request, **context: Any) -> Response:
    """What reverting the change would do, with the button; or why it cannot be."""
    store = ui.services(request).store
    revision = _revision(request)
    status = context.pop("status", 200)
    shown = (await store.history(revision + 1, 1)).changes
    change = shown[0] if shown and shown[0].revision == revision else None
    preview, refused = None, None
    try:
        preview = await store.preview_revert(revision)
    except (ChangeNotFound, RevertRefused) as error:
        refused = error.message
        status = max(status, ui.status_for(type(error)))
    return ui.page(
        request,
        "revert.html",
        status,
        heading=f"Revert revision {revision}",
        action=f"/ui/history/{revision}/revert",
        as_of=None,
        change=change,
        preview=preview,
        refused=refused,
        **context,
    )


async def revert_change(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    """The POST: revert, then back to History, where the revert is the newest row."""
    await store.revert(_revision(request))
    return "/ui/history"


def _as_of(text: str) -> int:
    try:
        return parse_decimal(text.strip(), "A revision", high=MAX_SUBJECT_ID)
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None


async def restore_page(ui: Ui, request: Request, **context: Any) -> Response:
    """What restoring the feature as of ``?revision=`` (or the posted ``as_of``) would do."""
    store = ui.services(request).store
    name: str = request.path_params["name"]
    form = context.get("form")
    posted = form.get("as_of") if form is not None else None
    as_of = _as_of(posted if isinstance(posted, str) else request.query_params.get("revision", ""))
    status = context.pop("status", 200)
    preview, refused = None, None
    try:
        preview = await store.preview_restore_feature(name, as_of)
    except (RevertRefused, ValidationError) as error:
        refused = error.message
        status = max(status, ui.status_for(type(error)))
    return ui.page(
        request,
        "revert.html",
        status,
        heading=f"Restore {name} as of revision {as_of}",
        action=f"/ui/features/{quote(name, safe='')}/restore",
        as_of=as_of,
        change=None,
        preview=preview,
        refused=refused,
        **context,
    )


async def restore_feature(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    """The POST: restore, then back to the feature's History."""
    name: str = request.path_params["name"]
    posted = form.get("as_of")
    await store.restore_feature(name, _as_of(posted if isinstance(posted, str) else ""))
    return "/ui/history?feature=" + quote(name, safe="")
