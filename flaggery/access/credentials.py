"""The one credential rule, and the one place secrets are looked up.

A request presents a secret as ``Authorization: Bearer <secret>`` (the scheme in any case,
followed by one or more spaces) or, when it has no Authorization header, as
``X-API-Key: <secret>``. Two Authorization (or two X-API-Key) headers are refused, 400, rather
than guessed between; another scheme is refused too. Every entry point reads credentials
through `presented_secret` and looks them up through `Keyring`: the REST routes, the flags
fast path, OFREP, the dashboard's sign-in.

A `Keyring` holds every configured secret as a `NamedToken`: FLAGGERY_ADMIN_TOKEN (admin
"admin"), FLAGGERY_TOKENS and FLAGGERY_TOKENS_FILE, and FLAGGERY_CLIENT_TOKENS (role client,
named ``client-token-<position>``). A lookup compares against every secret in constant time, so
neither the answer's timing nor a secret's position tells anything. A secret that matches none
counts as a failed attempt of the client's address (flaggery.access.attempts).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import Scope

from flaggery.access.attempts import FailedAttempts
from flaggery.errors import AmbiguousCredentials, Forbidden, TooManyAttempts, Unauthorized
from flaggery.settings import Settings
from flaggery.tokens import NamedToken, Role

__all__ = ["USAGE", "Keyring", "client_address", "presented_secret"]

USAGE = "Send 'Authorization: Bearer <token>' (or 'X-API-Key: <token>')"
_SCHEMES = {b"authorization": "Authorization", b"x-api-key": "X-API-Key"}


def presented_secret(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The secret the request presents (see the module), or None if it presents none.
    Raises AmbiguousCredentials for two headers of a kind, Unauthorized for another scheme
    or an empty token; messages never hold the secret."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _SCHEMES:
            if name in found:
                raise AmbiguousCredentials(
                    f"The request has more than one {_SCHEMES[name]} header: send one."
                )
            found[name] = bytes(value).strip()
    authorization = found.get(b"authorization")
    if authorization is None:
        return found.get(b"x-api-key") or None
    scheme, _, secret = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        raise Unauthorized(f"{USAGE}; the Authorization header uses another scheme.")
    secret = secret.lstrip(b" ")
    if not secret:
        raise Unauthorized(f"{USAGE}; the token is missing.")
    return secret


def client_address(scope: Scope) -> str:
    """The client's address as the server sees it (uvicorn applies X-Forwarded-For from a
    trusted proxy); "unknown" without one."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class Keyring:
    """Every configured secret (see the module) and the failed attempts of this process."""

    __slots__ = ("_secrets", "attempts", "clients_required", "tokens")

    def __init__(self, settings: Settings, attempts: FailedAttempts | None = None) -> None:
        named = settings.named_tokens()
        clients = tuple(
            NamedToken(f"client-token-{position}", Role.CLIENT, secret.encode())
            for position, secret in enumerate(settings.client_token_list, start=1)
        )
        self.tokens = named
        """The named tokens (FLAGGERY_ADMIN_TOKEN, FLAGGERY_TOKENS(_FILE)); empty: reader and
        admin routes are open (on loopback) or closed (elsewhere), see AdminGuard."""
        self._secrets = (*clients, *named)
        self.clients_required = bool(clients) or any(t.role is Role.CLIENT for t in named)
        """Whether the client routes (flags, OFREP) need a token; open otherwise."""
        self.attempts = FailedAttempts() if attempts is None else attempts

    def find(self, secret: bytes) -> NamedToken | None:
        """The token whose secret is ``secret``, or None; constant time per secret."""
        found = None
        for token in self._secrets:
            if hmac.compare_digest(token.secret, secret):
                found = token
        return found

    def check(self, scope: Scope, needed: Role) -> NamedToken:
        """The token the request presents, if its role allows ``needed``. Raises
        AmbiguousCredentials, Unauthorized (none, or one that matches no secret: a failed
        attempt), TooManyAttempts (it presents one, and its address failed too often: the
        token is not looked at) or Forbidden (a real token whose role is too low)."""
        secret = presented_secret(scope["headers"])
        if secret is None:
            raise Unauthorized(f"{USAGE}; the request has none.")
        address = client_address(scope)
        self.refuse_if_limited(address)
        token = self.find(secret)
        if token is None:
            self.attempts.failed(address)
            raise Unauthorized(f"{USAGE}; the token is wrong.")
        if not token.role.allows(needed):
            serves = {
                Role.CLIENT: " (a client token: it serves flags only)",
                Role.GUARD: " (a guard token: it calls the guard route only)",
            }.get(token.role, "")
            raise Forbidden(
                f"The token {token.name!r} has the role {token.role.name.lower()}{serves}; "
                f"this needs {needed.name.lower()} or higher."
            )
        return token

    def refuse_if_limited(self, address: str) -> None:
        """Raises TooManyAttempts while ``address`` may not try another credential."""
        wait = self.attempts.retry_after(address)
        if wait is not None:
            raise TooManyAttempts(
                f"Too many failed attempts from {address}: retry in {wait} s.", retry_after=wait
            )

    def serves_flags(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """For the flags fast path: whether the request may be answered without the router,
        never raising. True when client routes are open, or it presents a client token;
        anything else (no token, a wrong one, a reader or admin secret, which the router
        checks against the failed-attempt limit) is the router's."""
        if not self.clients_required:
            return True
        try:
            secret = presented_secret(headers)
        except (AmbiguousCredentials, Unauthorized):
            return False
        if secret is None:
            return False
        token = self.find(secret)
        return token is not None and token.role is Role.CLIENT
