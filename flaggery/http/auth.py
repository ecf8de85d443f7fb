"""The guards: pure ASGI middleware around each route. Admin methods need admin mode (and the
admin token if one is set); public ones (reading a subject and its flags) need a client token
only if client tokens are configured. Health, metrics and docs are not guarded.

A read-only server (``FLAGGERY_ADMIN_MODE`` false, the default) answers 423 NotAdmin, as 0.2.1
did. An admin server with ``FLAGGERY_ADMIN_TOKEN`` set wants ``Authorization: Bearer <token>``
and answers 401 Unauthorized otherwise; the comparison takes constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.errors import FlaggeryError, Forbidden, NotAdmin, Unauthorized
from flaggery.settings import Settings

__all__ = ["AdminGuard", "ClientAuth", "client_token"]


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


class ClientAuth:
    """The ``client`` role: with ``FLAGGERY_CLIENT_TOKENS`` set, serving routes need one of
    those tokens (or the admin token) as ``Authorization: Bearer <token>`` (scheme in any
    case) or ``X-API-Key: <token>``. Without it they are open, as in 0.2.1.

    `problem` costs one pass over the request headers and one constant-time comparison per
    configured token, so a token's position in the list leaks nothing.
    """

    __slots__ = ("_tokens", "required")

    def __init__(self, settings: Settings) -> None:
        tokens = settings.client_token_list
        self.required = bool(tokens)
        admin = () if settings.admin_token is None else (settings.admin_token,)
        self._tokens = tuple(token.encode() for token in (*tokens, *admin))

    def problem(self, headers: Iterable[tuple[bytes, bytes]]) -> FlaggeryError | None:
        """None if the request may be served, else the error to answer (Unauthorized if no
        token was given, Forbidden if it is not a configured one)."""
        if not self.required:
            return None
        given = client_token(headers)
        if given is None:
            return Unauthorized(
                "This server requires a client token: send 'Authorization: Bearer <token>' "
                "or 'X-API-Key: <token>' with one of FLAGGERY_CLIENT_TOKENS."
            )
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        if not matched:
            return Forbidden("The client token is not one this server accepts.")
        return None


def client_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The token of ``Authorization: Bearer <token>`` or else of ``X-API-Key``, or None."""
    api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            api_key = bytes(value).strip()
    return api_key
