"""The ``client`` role: tokens that the serving routes (the flags route, OFREP) require when
the operator configures some. Used by `flaggery.http` and `flaggery.ofrep` alike; the roles
themselves are in `flaggery.tokens`."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from flaggery.errors import FlaggeryError, Forbidden, Unauthorized
from flaggery.settings import Settings
from flaggery.tokens import Role

__all__ = ["ClientAuth", "client_token"]


class ClientAuth:
    """The ``client`` role: with ``FLAGGERY_CLIENT_TOKENS`` set, or a named token of role
    ``client`` (FLAGGERY_TOKENS), serving routes need a client token, or any named token (a
    higher role includes the lower ones), as ``Authorization: Bearer <token>`` (scheme in any
    case) or ``X-API-Key: <token>``. Without one configured they are open, as in 0.2.1.

    `problem` costs one pass over the request headers and one constant-time comparison per
    configured token, so a token's position in the list leaks nothing.
    """

    __slots__ = ("_tokens", "required")

    def __init__(self, settings: Settings) -> None:
        named = settings.named_tokens()
        clients = tuple(token.encode() for token in settings.client_token_list)
        self.required = bool(clients) or any(token.role is Role.CLIENT for token in named)
        self._tokens = (*clients, *(token.secret for token in named))

    def problem(self, headers: Iterable[tuple[bytes, bytes]]) -> FlaggeryError | None:
        """None if the request may be served, else the error to answer (Unauthorized if no
        token was given, Forbidden if it is not a configured one)."""
        if not self.required:
            return None
        given = client_token(headers)
        if given is None:
            return Unauthorized(
                "This server requires a client token: send 'Authorization: Bearer <token>' "
                "or 'X-API-Key: <token>' with a client token."
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
