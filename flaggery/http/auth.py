"""The admin guard: pure ASGI middleware around each route, guarding its admin methods (not
the public ones: reading a subject and its flags, health, metrics and docs).

A read-only server (``FLAGGERY_ADMIN_MODE`` false, the default) answers admin routes 423
NotAdmin, as 0.2.1 did; history, the snapshot and the stream it serves. When any token is
configured (flaggery.tokens), a guarded route wants ``Authorization: Bearer <token>`` and
answers 401 Unauthorized otherwise, or 403 Forbidden to a token whose role is too low (a
reader writing). With no token, guarded routes are open on a loopback address only; on any
other (FLAGGERY_HOST=0.0.0.0) they answer 401 saying to configure FLAGGERY_TOKENS (an admin
server there is refused at start, flaggery.settings.Settings.check_exposure). Writes record
the token's name as their actor (flaggery.store.actor).
Serving routes (flags, explain) are open unless client tokens are configured
(flaggery.client_auth); health, metrics and docs are never guarded.
The scheme is case-insensitive and may be followed by
more than one space (RFC 9110, section 11.4); two Authorization headers are refused rather
than guessed between. The token comparison takes constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.client_auth import ClientAuth
from flaggery.errors import Forbidden, NotAdmin, Unauthorized
from flaggery.settings import Settings
from flaggery.store.actor import ANONYMOUS, acting_as
from flaggery.tokens import NamedToken, Role, find_token

__all__ = ["AdminGuard", "authorize", "bearer_token"]

_USAGE = (
    "This route needs the header 'Authorization: Bearer <token>' (a token of "
    "FLAGGERY_ADMIN_TOKEN or FLAGGERY_TOKENS)"
)


class AdminGuard:
    """Guards the methods of one route: ``roles`` maps each guarded method to the role it
    needs; ``admin_only`` methods are also refused (423) by a read-only server;
    ``client_methods`` serve flags, and need a client token only if some are configured."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        roles: Mapping[str, Role],
        admin_only: Collection[str],
        client_methods: Collection[str] = (),
    ) -> None:
        self.app = app
        self.roles = dict(roles)
        self.admin_only = frozenset(admin_only)
        self.client_methods = frozenset(client_methods)
        self.clients = ClientAuth(settings)
        self.admin_mode = settings.admin_mode
        self.tokens = settings.named_tokens()
        self.client_secrets = tuple(token.encode() for token in settings.client_token_list)
        self.closed = settings.reader_routes_closed
        self.host = settings.host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        needed = self.roles.get(scope["method"])
        if needed is None:
            if scope["method"] in self.client_methods:
                problem = self.clients.problem(scope["headers"])
                if problem is not None:
                    raise problem
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
        actor = (
            ANONYMOUS
            if not self.tokens
            else authorize(scope, self.tokens, needed, self.client_secrets).name
        )
        with acting_as(actor):
            await self.app(scope, receive, send)


def authorize(
    scope: Scope,
    tokens: Collection[NamedToken],
    needed: Role,
    client_secrets: Collection[bytes] = (),
) -> NamedToken:
    """The token the request presents, if it allows ``needed``. Raises Unauthorized (none,
    malformed or unknown) or Forbidden (its role is too low, or it is one of
    ``client_secrets``, FLAGGERY_CLIENT_TOKENS); messages never echo a secret."""
    headers = scope["headers"]
    if not any(name == b"authorization" for name, _ in headers) and any(
        name == b"x-api-key" for name, _ in headers
    ):
        raise Unauthorized(
            f"{_USAGE}; the request has only X-API-Key, which the serving routes read "
            "(client tokens), not this one."
        )
    secret = bearer_token(headers)
    token = find_token(tokens, secret)
    if token is None:
        if find_client_secret(client_secrets, secret):
            raise Forbidden(
                f"The token is a client token (FLAGGERY_CLIENT_TOKENS), which serves flags "
                f"only; this route needs a token of role {needed.name.lower()} or higher "
                "(FLAGGERY_ADMIN_TOKEN or FLAGGERY_TOKENS)."
            )
        raise Unauthorized(f"{_USAGE}; the token is wrong.")
    if not token.role.allows(needed):
        raise Forbidden(
            f"The token {token.name!r} has the role {token.role.name.lower()}; this route "
            f"needs {needed.name.lower()} or higher."
        )
    return token


def find_client_secret(secrets: Collection[bytes], secret: bytes) -> bool:
    """Whether ``secret`` is one of ``secrets``, comparing each in constant time."""
    found = False
    for candidate in secrets:
        found |= hmac.compare_digest(candidate, secret)
    return found


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
