"""Rendering: the Jinja2 environment (autoescaped: every name is text), the context every
page gets, and the bucket chart as server-side SVG (no script, no inline style)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from flaggery.access import Keyring
from flaggery.engine.model import (
    DISABLE,
)
from flaggery.errors import FlaggeryError
from flaggery.live.evaluator import Evaluator
from flaggery.live.exposure_intake import ExposureIntake
from flaggery.settings import Settings
from flaggery.store.repository import AsyncFlaggery
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.send_watch import SendWatch
from flaggery.ui.labels import step_label, variant_label
from flaggery.ui.session import Viewer, csrf_token, viewer
from flaggery.ui.values import TYPES, json_text, type_of

__all__ = ["PAGE_SIZE", "Ui", "bars", "page_of"]

PAGE_SIZE = 50


class _Services(Protocol):
    store: AsyncFlaggery
    evaluator: Evaluator
    broadcast: Broadcast
    send_watch: SendWatch

    @property
    def exposures(self) -> ExposureIntake:
        """This process's accepted exposures (flaggery.live.exposure_intake)."""

    async def catch_up(self) -> None:
        """Bring this process's snapshot up to the latest write (flaggery.http.endpoint)."""

    def require_snapshot(self) -> None:
        """DatabaseUnavailable (UpstreamUnavailable on an edge) saying why, while no snapshot
        is loaded (flaggery.http.endpoint)."""


class Ui:
    """What every page handler needs: settings, tokens, templates, the error table."""

    def __init__(
        self,
        settings: Settings,
        status_for: Callable[[type[FlaggeryError]], int],
        keyring: Keyring,
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.tokens = keyring.tokens
        self.status_for = status_for
        self.templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
        self.templates.env.filters["json_text"] = json_text
        self.templates.env.filters["type_of"] = type_of
        self.templates.env.filters["variant"] = variant_label
        self.templates.env.filters["step"] = step_label
        self.templates.env.globals["DISABLE"] = DISABLE
        self.templates.env.globals["value_types"] = TYPES

    def services(self, request: Request) -> _Services:
        services: _Services = request.app.state.services
        return services

    def viewer(self, request: Request) -> Viewer:
        found = viewer(request, self.tokens)
        assert found is not None  # the guard let the request through
        return found

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render ``template`` with the viewer, the CSRF token and ``context``."""
        context.setdefault("errors", {})
        base = {
            "viewer": viewer(request, self.tokens),  # None on the sign-in page
            "signin": bool(self.tokens),
            "csrf": csrf_token(request),
            "path": request.url.path,
        }
        return self.templates.TemplateResponse(
            request, template, {**base, **context}, status_code=status
        )


def page_of(items: Sequence[Any], page: int, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of ``items`` (1-based ``page``, clamped) with its navigation numbers."""
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return {
        "items": items[(page - 1) * size : page * size],
        "page": page,
        "pages": pages,
        "total": len(items),
    }


def bars(weights: Sequence[int], width: int = 960, height: int = 160) -> list[dict[str, float]]:
    """Rectangles (x, y, w, h in SVG user units) for a bar per weight, scaled to the largest.
    O(len(weights)); for 10,000 buckets the bars are thinner than a pixel but still add up."""
    if not weights:
        return []
    top = max(weights) or 1
    step = width / len(weights)
    return [
        {
            "x": i * step,
            "w": max(step * 0.9, 0.5),
            "h": height * weight / top,
            "y": height - height * weight / top,
        }
        for i, weight in enumerate(weights)
    ]
