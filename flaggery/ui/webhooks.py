"""The dashboard's Webhooks page: every subscription with its cursor and whether it is
failing (and why), a form to subscribe a URL, and per subscription replay and remove.

The secret is typed once into the form and never shown again. Each action is one
AsyncFlaggery call, the REST API's (flaggery.store.webhooks).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.errors import ValidationError
from flaggery.store.operation_names import WRITE_OPERATIONS
from flaggery.store.repository import AsyncFlaggery
from flaggery.ui.actions import form_post
from flaggery.ui.render import Ui

__all__ = ["routes"]

OPERATION_CHOICES = sorted(WRITE_OPERATIONS)
"""What the operation filter's field offers (a name no write records is refused)."""


def routes(ui: Ui) -> list[Route]:
    """GET /ui/webhooks, and its three POST actions."""

    async def listing(request: Request) -> Response:
        return await page(ui, request)

    return [
        Route("/webhooks", listing, methods=["GET"]),
        form_post(ui, "/webhooks", _add, page, "create"),
        form_post(ui, "/webhooks/{name:path}/replay", _replay, page, "replay"),
        form_post(ui, "/webhooks/{name:path}/remove", _remove, page, "replay"),
    ]


async def page(ui: Ui, request: Request, **context: Any) -> Response:
    hooks = await ui.services(request).store.webhooks()
    status = context.pop("status", 200)
    return ui.page(
        request, "webhooks.html", status, webhooks=hooks, operations=OPERATION_CHOICES, **context
    )


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


async def _add(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    secret = form.get("secret")
    await store.add_webhook(
        _text(form, "name"),
        _text(form, "url"),
        secret if isinstance(secret, str) else "",
        feature=_text(form, "feature") or None,
        group=_text(form, "group") or None,
        test=_text(form, "test") or None,
        operation=_text(form, "operation") or None,
    )
    return "/ui/webhooks"


async def _replay(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    try:
        revision = parse_decimal(_text(form, "from_revision"), "from_revision (a revision)")
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None
    await store.replay_webhook(request.path_params["name"], revision)
    return "/ui/webhooks#" + quote(request.path_params["name"], safe="")


async def _remove(store: AsyncFlaggery, form: FormData, request: Request) -> str:
    if form.getlist("confirm") != ["on"]:
        raise ValidationError("Tick the box to confirm: this cannot be undone here.")
    await store.remove_webhook(request.path_params["name"])
    return "/ui/webhooks"
