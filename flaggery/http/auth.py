"""The admin guard: pure ASGI middleware around each route, guarding its admin methods (not
the public ones: reading a subject and its flags, health, metrics and docs).

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

__all__ = ["AdminGuard"]


class AdminGuard:
    def __init__(self, app: ASGIApp, *, settings: Settings, methods: Collection[str]) -> None:
        self.app = app
        self.methods = frozenset(methods)
        self.admin_mode = settings.admin_mode
        self.expected = (
            None if settings.admin_token is None else f"Bearer {settings.admin_token}".encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
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
