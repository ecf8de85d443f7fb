"""The route guard: pure ASGI middleware around each REST route, enforcing the role table
(docs/security.md) for its methods.

A method needs no token (health, readiness, docs), the ``client`` role (the serving routes:
open unless client tokens are configured, flaggery.access.Keyring.clients_required), or the
``reader`` or ``admin`` role. A read-only server (``FLAGGERY_ADMIN_MODE`` false, the default)
answers admin-only routes 423 NotAdmin, as 0.2.1 did; history, the snapshot and the stream it
serves. When any named token is configured, a reader or admin route wants a token
(flaggery.access.credentials: the one credential rule) and answers 401 Unauthorized
otherwise, or 403 Forbidden to a token whose role is too low (a reader writing, a client
token reading history). With no named token, those routes are open on a loopback address only
(where flaggery.access.hosts applies the Host rule); on any other (FLAGGERY_HOST=0.0.0.0) they
answer 401 saying to configure FLAGGERY_TOKENS (an admin server there is refused at start,
flaggery.settings.Settings.check_exposure). Writes record the token's name as their actor
(flaggery.store.actor).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.access import Keyring
from flaggery.errors import NotAdmin, Unauthorized
from flaggery.settings import Settings
from flaggery.store.actor import ANONYMOUS, acting_as
from flaggery.tokens import Role

__all__ = ["AdminGuard"]


class AdminGuard:
    """Guards the methods of one route: ``roles`` maps each guarded method to the role it
    needs (a method not in it needs nothing); ``admin_only`` methods are also refused (423)
    by a read-only server."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        keyring: Keyring,
        roles: Mapping[str, Role],
        admin_only: Collection[str],
    ) -> None:
        self.app = app
        self.roles = dict(roles)
        self.admin_only = frozenset(admin_only)
        self.keyring = keyring
        self.admin_mode = settings.admin_mode
        self.closed = settings.reader_routes_closed
        self.host = settings.host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        needed = self.roles.get(scope["method"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        if needed is Role.CLIENT:
            if self.keyring.clients_required:
                self.keyring.check(scope, Role.CLIENT)
            await self.app(scope, receive, send)
            return
        if scope["method"] in self.admin_only and not self.admin_mode:
            raise NotAdmin(
                "This server is read-only: admin routes are served only by a server started "
                "with FLAGGERY_ADMIN_MODE=true (flaggery --admin)."
            )
        if self.closed:
            raise Unauthorized(
                f"This server listens on {self.host} and has no token configured, so its "
                "reader routes (history, the snapshot, the stream) are closed: set "
                "FLAGGERY_TOKENS or FLAGGERY_TOKENS_FILE (a name:reader:secret entry) and send "
                "'Authorization: Bearer <token>', or bind to 127.0.0.1."
            )
        actor = ANONYMOUS if not self.keyring.tokens else self.keyring.check(scope, needed).name
        with acting_as(actor):
            await self.app(scope, receive, send)
