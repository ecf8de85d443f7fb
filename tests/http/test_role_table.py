"""The role table (docs/security.md), checked on every route of every mount with every kind
of credential (issue 18, item 1). The routes are enumerated from the app itself (the router's
routes, the dashboard's mount, OFREP's list), never listed here, so a new route lands in the
table's default (reads need a reader, writes an admin) until the table says otherwise.

Each request is one raw ASGI call that stops at the response's start, so event streams are
checked like any route."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from flaggery.http import create_app
from flaggery.http.app import FlaggeryApp
from flaggery.ofrep.app import ROUTES as OFREP_ROUTES
from flaggery.settings import Settings
from flaggery.tokens import Role
from tests.http.conftest import MakeClient
from tests.http.raw_asgi import first_status
from tests.http.test_ui import csrf_of

SECRETS = {
    Role.GUARD: "guard0-5ecret-guard0-5ecret-guard0",
    Role.CLIENT: "c1ient-5ecret-c1ient-5ecret-c1ient",
    Role.READER: "reader-5ecret-reader-5ecret-reader",
    Role.ADMIN: "admin0-5ecret-admin0-5ecret-admin0",
}
TOKENS = " ".join(f"{role.name.lower()}-1:{role.name.lower()}:{s}" for role, s in SECRETS.items())
CREDENTIALS: tuple[Role | None, ...] = (None, Role.GUARD, Role.CLIENT, Role.READER, Role.ADMIN)
OPEN = (
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/ui/signin",
    "/ui/signout",
)
SERVING = re.compile(
    r"/v1/subjects/\{subject_id\}(/flags|/explain)?|/v1/keys/\{key:targeting_key\}/(flags|explain)"
)


def needed(method: str, path: str) -> Role | None:
    """The role table of docs/security.md, stated independently of the code under test."""
    if path in OPEN or path.startswith(("/docs/", "/ui/static")):
        return None
    if path.startswith("/ofrep/"):
        return Role.CLIENT
    if SERVING.fullmatch(path) and method in ("GET", "HEAD"):
        return Role.CLIENT
    if (method, path) == ("POST", "/v1/exposures"):
        return Role.CLIENT
    if (method, path) == ("POST", "/v1/guard/alertmanager"):
        return Role.GUARD  # and admin: nobody else (flaggery.tokens.Role.allows)
    return Role.READER if method in ("GET", "HEAD") else Role.ADMIN


def every_route(app: FlaggeryApp) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of every mount, and of OFREP."""

    def walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Route):
                for method in sorted(route.methods or ()):
                    yield method, prefix + route.path
            elif isinstance(route, Mount):
                inner = route.routes
                if inner:
                    yield from walk(list(inner), prefix + route.path)
                else:  # static files
                    yield "GET", prefix + route.path + "/x"

    yield from walk(app.routes, "")
    yield from OFREP_ROUTES


def concrete(path: str) -> str:
    return re.sub(r"\{subject_id\}", "1", re.sub(r"\{(?!subject_id)[^}]+\}", "x", path))


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[FlaggeryApp]:
    settings = Settings(
        db_url=db_url,
        db_auto_upgrade=False,
        admin_mode=True,
        tokens=TOKENS,
        enable_prometheus=True,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def ui_session(app: FlaggeryApp, role: Role | None) -> list[tuple[str, str]]:
    """A dashboard session's headers (its cookie and CSRF token) after signing in with
    ``role``'s token (None: the sign-in page only). A client or guard token's sign-in is
    refused."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as browser:
        csrf = csrf_of(await browser.get("/ui/signin"))
        if role is not None:
            form = {"csrf": csrf, "token": SECRETS[role]}
            response = await browser.post("/ui/signin", data=form)
            refused = role in (Role.CLIENT, Role.GUARD)
            assert response.status_code == (403 if refused else 303), response.text
            if not refused:  # signing in starts a new session, with a new token
                csrf = csrf_of(await browser.get("/ui/features"))
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        return [("Cookie", cookie), ("X-CSRF-Token", csrf)]


def refused_by_dashboard(status: int, headers: dict[bytes, bytes], role: Role | None) -> bool:
    """The dashboard's guard: 401 (a post, not signed in), 403, or a page sent to sign in."""
    to_sign_in = role is not None and headers.get(b"location") == b"/ui/signin"
    return status in (401, 403) or to_sign_in


async def test_every_route_with_every_credential(app: FlaggeryApp) -> None:
    routes = sorted(set(every_route(app)))
    assert ("GET", "/ui/stream") in routes and ("GET", "/v1/stream") in routes
    assert ("GET", "/ofrep/v1/events") in routes and ("GET", "/metrics") in routes
    wrong = []
    for credential in CREDENTIALS:
        session = await ui_session(app, credential)
        bearer = [] if credential is None else [("Authorization", f"Bearer {SECRETS[credential]}")]
        for method, template in routes:
            if (method, template) == ("POST", "/ui/signin"):
                continue  # signing in is checking a token: ui_session signs in with each
            path, role = concrete(template), needed(method, template)
            body = b"{}" if path.startswith("/ofrep/") and method == "POST" else b""
            if path.startswith("/ui/"):
                status, headers = await first_status(app, method, path, session)
                refused = refused_by_dashboard(status, headers, role)
            else:
                status, headers = await first_status(app, method, path, bearer, body)
                refused = status in (401, 403)
            allowed = role is None or (credential is not None and credential.allows(role))
            if allowed == refused or status in (421, 429):
                wrong.append((credential, method, template, status))
    assert wrong == [], "\n".join(map(str, wrong))


async def test_an_open_loopback_server_guards_no_route(db_url: str) -> None:
    """Without any token, on loopback (the README's first command), no route refuses: the
    Host rule guards it instead (tests/http/test_host_rule.py)."""
    settings = Settings(db_url=db_url, db_auto_upgrade=False, admin_mode=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as browser:
            csrf = csrf_of(await browser.get("/ui/features"))  # nobody signs in: no sign-in form
            cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        session = [("Cookie", cookie), ("X-CSRF-Token", csrf)]
        wrong = []
        for method, template in sorted(set(every_route(app)) - {("POST", "/ui/signin")}):
            path = concrete(template)
            body = b"{}" if path.startswith("/ofrep/") and method == "POST" else b""
            headers = session if path.startswith("/ui/") else []
            status, _ = await first_status(app, method, path, headers, body)
            if status in (401, 403, 421, 429):
                wrong.append((method, template, status))
        assert wrong == [], "\n".join(map(str, wrong))


@pytest.mark.parametrize(
    "settings",
    [
        {"tokens": f"app:client:{SECRETS[Role.CLIENT]} boss:admin:{SECRETS[Role.ADMIN]}"},
        {"client_tokens": SECRETS[Role.CLIENT], "admin_token": SECRETS[Role.ADMIN]},
    ],
)
async def test_a_client_token_cannot_sign_in_to_the_dashboard(
    make_client: MakeClient, settings: dict[str, str]
) -> None:
    """Issue 18, item 1: the token shipped inside apps signed in to /ui/ and read everything."""
    browser = await make_client(**settings)
    csrf = csrf_of(await browser.get("/ui/signin"))
    refused = await browser.post("/ui/signin", data={"csrf": csrf, "token": SECRETS[Role.CLIENT]})
    assert refused.status_code == 403 and "serves flags only" in refused.text
    for page in ("/ui/features", "/ui/history", "/ui/subjects"):
        response = await browser.get(page, follow_redirects=False)
        assert response.headers.get("location") == "/ui/signin", page
    bearer = {"Authorization": f"Bearer {SECRETS[Role.CLIENT]}"}
    assert (await browser.get("/v1/changes", headers=bearer)).status_code == 403
