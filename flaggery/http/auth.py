"""The guards: pure ASGI middleware around each route. Admin methods need admin mode (and the
admin token if one is set); public ones (reading a subject and its flags) need a client token
only if client tokens are configured. Health, metrics and docs are not guarded.

A read-only server (``FLAGGERY_ADMIN_MODE`` false, the default) answers 423 NotAdmin, as 0.2.1
did. An admin server with ``FLAGGERY_ADMIN_TOKEN`` set wants ``Authorization: Bearer <token>``
and answers 401 Unauthorized otherwise. The scheme is case-insensitive and may be followed by
more than one space (RFC 9110, section 11.4); two Authorization headers are refused rather
than guessed between. The token comparison takes constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.errors import NotAdmin, Unauthorized
from flaggery.settings import Settings
from flaggery.tokens import ClientAuth

__all__ = ["AdminGuard", "bearer_token"]

_USAGE = "Admin routes need the header 'Authorization: Bearer <FLAGGERY_ADMIN_TOKEN>'"


class AdminGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        methods: Collection[str],
        client_methods: Collection[str] = (),
    ) -> None:
        """`methods` are the admin ones; `client_methods` those that serve flags."""
        self.app = app
        self.methods = frozenset(methods)
        self.client_methods = frozenset(client_methods)
        self.clients = ClientAuth(settings)
        self.admin_mode = settings.admin_mode
        self.expected = None if settings.admin_token is None else settings.admin_token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
            if scope["method"] in self.client_methods:
                problem = self.clients.problem(scope["headers"])
                if problem is not None:
                    raise problem
            await self.app(scope, receive, send)
            return
        if not self.admin_mode:
            raise NotAdmin(
                "This server is read-only: admin routes are served only by a server started "
                "with FLAGGERY_ADMIN_MODE=true (flaggery --admin)."
            )
        if self.expected is not None:
            _check_token(scope["headers"], self.expected)
        await self.app(scope, receive, send)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The token of the one ``Authorization: Bearer <token>`` header in ``headers``.
    Raises Unauthorized saying what is wrong with the header (never with the token)."""
    values = [value for name, value in headers if name == b"authorization"]
    if not values:
        raise Unauthorized(f"{_USAGE}; the request has none.")
    if len(values) > 1:
        raise Unauthorized(f"{_USAGE}; the request has {len(values)} Authorization headers.")
    scheme, _, token = bytes(values[0]).strip().partition(b" ")
    if scheme.lower() != b"bearer":
        raise Unauthorized(f"{_USAGE}; the request uses another scheme.")
    token = token.lstrip(b" ")
    if not token:
        raise Unauthorized(f"{_USAGE}; the token is missing.")
    return token


def _check_token(headers: list[tuple[bytes, bytes]], expected: bytes) -> None:
    if not hmac.compare_digest(bearer_token(headers), expected):
        raise Unauthorized(f"{_USAGE}; the token is wrong.")
