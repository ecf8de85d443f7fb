"""The guards: pure ASGI middleware around each route. Admin methods need admin mode (and the
admin token if one is set); public ones (reading a subject and its flags) need a client token
only if client tokens are configured. Health, metrics and docs are not guarded.

A read-only server (``FLAGGERY_ADMIN_MODE`` false, the default) answers 423 NotAdmin, as 0.2.1
did. An admin server with ``FLAGGERY_ADMIN_TOKEN`` set wants ``Authorization: Bearer <token>``
and answers 401 Unauthorized otherwise; the comparison takes constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.errors import NotAdmin, Unauthorized
from flaggery.settings import Settings
from flaggery.tokens import ClientAuth

__all__ = ["AdminGuard"]


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
        self.expected = (
            None if settings.admin_token is None else f"Bearer {settings.admin_token}".encode()
        )

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
        if self.expected is not None and not hmac.compare_digest(
            _authorization(scope), self.expected
        ):
            raise Unauthorized(
                "Admin routes need the header 'Authorization: Bearer <FLAGGERY_ADMIN_TOKEN>'."
            )
        await self.app(scope, receive, send)


def _authorization(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    return b""
