"""The ``/ui`` mount: static assets, the guard every page passes, and the session cookie.

Order, outermost first: security headers (CSP forbids inline scripts and styles and every
origin but this one), the signed session cookie (Secure over HTTPS), the guard, then the page
router. The guard is the role table's (docs/security.md): 423 on a read-only server; where
tokens are configured, the sign-in page and the static files are open, every other page and
the live stream need a signed-in reader or admin token, and every form post an admin one.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flaggery.access import Keyring
from flaggery.errors import (
    DatabaseUnavailable,
    FlaggeryError,
    Forbidden,
    NotAdmin,
    ValidationError,
)
from flaggery.request_body import utf8_path
from flaggery.settings import Settings
from flaggery.ui import actions, delivery, live, pages, webhooks
from flaggery.ui.render import Ui
from flaggery.ui.session import session_key, viewer

__all__ = ["ui_mount"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
_OPEN_PATHS = ("/static/", "/signin", "/signout")


# A signed cookie is checked, not looked up: signing out deletes it from the browser, but a copy
# stays valid until it expires. So it expires after a working day; changing the tokens or
# FLAGGERY_SESSION_SECRET ends every session at once.
SESSION_SECONDS = 12 * 60 * 60


def ui_mount(
    settings: Settings, status_for: Callable[[type[FlaggeryError]], int], keyring: Keyring
) -> Mount:
    """The dashboard, to mount at ``/ui``. ``status_for`` is the HTTP error table's lookup
    (flaggery.http.errors), so a refused form answers the same status as the REST route;
    ``keyring`` is the app's (the same tokens and failed-attempt limit as every route)."""
    ui = Ui(settings, status_for, keyring)
    routes = [
        Route("/", lambda request: RedirectResponse("/ui/features", 303)),
        Mount("/static", StaticFiles(packages=[("flaggery.ui", "static")]), name="static"),
        *pages.routes(ui),
        *actions.routes(ui),
        *delivery.routes(ui),
        *live.routes(ui),
        *webhooks.routes(ui),
    ]
    session = Middleware(
        SessionMiddleware,
        secret_key=session_key(keyring.tokens, settings.session_secret),
        session_cookie="flaggery_ui",
        max_age=SESSION_SECONDS,
        same_site="strict",
    )
    # The routes stay visible (Mount.routes), so the role-table test walks them too.
    middleware = [Middleware(_SecurityHeaders), session, Middleware(_Guard, ui=ui)]
    return Mount("/ui", routes=routes, middleware=middleware)


class _Guard:
    def __init__(self, app: ASGIApp, ui: Ui) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.ui.settings.admin_mode:
            raise NotAdmin(
                "This server is read-only: the dashboard is served only by a server started "
                "with FLAGGERY_ADMIN_MODE=true (flaggery --admin)."
            )
        if not utf8_path(scope):  # as the REST routes: no page reads an entity as U+FFFD
            raise ValidationError(
                "The path or query is not UTF-8 once percent-decoded: percent-encode names "
                "and values as UTF-8 (é as %C3%A9)."
            )
        path = scope["path"][len(scope.get("root_path", "")) :]
        if path.startswith(_OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        signed_in = viewer(Request(scope), self.ui.tokens)
        if signed_in is None:
            response: Response = RedirectResponse("/ui/signin", 303)
            if scope["method"] not in ("GET", "HEAD"):
                response = Response("Sign in first.", 401, {"HX-Redirect": "/ui/signin"})
            await response(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and not signed_in.can_write:
            raise Forbidden(f"The token {signed_in.name!r} is a reader: it cannot change anything.")
        request = Request(scope)
        try:
            self.ui.services(request).require_snapshot()
        except DatabaseUnavailable as unavailable:
            # Every page reads the snapshot: say why there is none, on a page, not as JSON.
            reason = str(unavailable)
            schema = "flaggery db upgrade" in reason
            page = self.ui.page(request, "unavailable.html", 503, reason=reason, schema=schema)
            await page(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *_HEADERS]
                if secure:  # the session cookie travels only over HTTPS when it came so
                    headers = [_secure(name, value) for name, value in headers]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secure(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name == b"set-cookie" and b"; secure" not in value.lower():
        return name, value + b"; secure"
    return name, value
