"""CORS for the routes browsers call: the flags route and OFREP (its event stream included).

Starlette's CORSMiddleware does the work (preflight, origin checks, headers). It is applied to
those paths only, never to the admin API, and only when ``FLAGGERY_CORS_ORIGINS`` is set. The
flags fast path hands requests that carry an ``Origin`` to the router when CORS is on, so
requests from servers (no ``Origin``) keep the fast path.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ALLOWED_HEADERS", "FlagsCors", "cors_for"]

ALLOWED_HEADERS = ("authorization", "content-type", "if-none-match", "x-api-key")
# Browsers may cache a preflight answer this long (seconds): one preflight per page session.
PREFLIGHT_MAX_AGE = 600


def cors_for(app: ASGIApp, origins: Sequence[str]) -> CORSMiddleware:
    """`app` behind CORS for `origins` (``*`` for any), with the methods and headers the flags
    route and OFREP clients use, and ``ETag`` readable by scripts."""
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=["ETag"],
        max_age=PREFLIGHT_MAX_AGE,
    )


class FlagsCors:
    """CORS on ``/v1/subjects/{id}/flags`` only; every other route passes straight through."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = cors_for(app, origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_flags_path(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_flags_path(path: str) -> bool:
    return path.startswith("/v1/subjects/") and path.endswith("/flags") and path.count("/") == 4
