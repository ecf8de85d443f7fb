"""Who is signed in, and the CSRF token, kept in Starlette's signed session cookie.

The cookie (``flaggery_ui``) is HttpOnly and SameSite=Strict, Secure when the request came
over HTTPS, signed with a key derived from FLAGGERY_SESSION_SECRET and the configured token
secrets (so every worker and restart agrees, and changing the tokens signs everyone out).
It holds the token's *name*, never its secret; each request checks the name is still
configured, so removing a token ends its sessions. Only reader and admin tokens sign in (the
role table, docs/security.md): a client token ships inside apps and serves flags only.
Without tokens (an open loopback admin server) nobody signs in and the cookie only carries
the CSRF token; the ``flaggery`` command then gives its workers one session secret
(flaggery.cli), so each accepts the others' forms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from starlette.requests import Request

from flaggery.access import Keyring
from flaggery.access.credentials import client_address
from flaggery.errors import Forbidden, Unauthorized
from flaggery.store.actor import ANONYMOUS
from flaggery.tokens import NamedToken, Role

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "Viewer", "check_csrf", "csrf_token", "session_key"]

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class Viewer:
    """The signed-in token's name and role (ADMIN for everybody when no token is configured)."""

    def __init__(self, name: str, role: Role) -> None:
        self.name = name
        self.role = role

    @property
    def can_write(self) -> bool:
        return self.role.allows(Role.ADMIN)


def session_key(tokens: Sequence[NamedToken], secret: str | None) -> str:
    """The cookie-signing key: HMAC of ``secret`` (FLAGGERY_SESSION_SECRET) and every token
    secret, so each worker and restart with the same settings derives the same key; random
    (this process only) when there is neither."""
    if not tokens and secret is None:
        return secrets.token_hex(32)
    digest = hmac.new(b"flaggery-ui-session", digestmod=hashlib.sha256)
    digest.update((secret or "").encode() + b"\0")
    for token in sorted(tokens, key=lambda t: t.name):
        digest.update(token.name.encode() + b"\0" + token.secret + b"\0")
    return digest.hexdigest()


def viewer(request: Request, tokens: Sequence[NamedToken]) -> Viewer | None:
    """The request's viewer, or None when tokens are configured and nobody is signed in (or
    the session names a token that is gone, or a client token)."""
    if not tokens:
        return Viewer(ANONYMOUS, Role.ADMIN)
    name = request.session.get("token")
    for token in tokens:
        if token.name == name and token.role.allows(Role.READER):
            return Viewer(token.name, token.role)
    return None


def sign_in(request: Request, keyring: Keyring, secret: str) -> Viewer:
    """Check ``secret`` and remember its token's name. Raises TooManyAttempts (this address
    failed too often), Unauthorized (unknown token: a failed attempt) or Forbidden (a client
    token, which cannot sign in)."""
    address = client_address(request.scope)
    keyring.refuse_if_limited(address)
    token = keyring.find(secret.strip().encode())
    if token is None:
        keyring.attempts.failed(address)
        raise Unauthorized("That token is not one this server accepts.")
    if not token.role.allows(Role.READER):
        kind = (
            "a guard token, which calls the guard route only"
            if token.role is Role.GUARD
            else ("a client token, which serves flags only")
        )
        raise Forbidden(
            f"The token {token.name!r} is {kind}: sign in with a reader or admin token."
        )
    request.session.clear()
    request.session["token"] = token.name
    return Viewer(token.name, token.role)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use (32 random bytes, hex)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_hex(32)
        request.session[CSRF_FIELD] = token
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    """Raises Forbidden unless ``sent`` (form field or header) is this session's CSRF token."""
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden("The form is missing its CSRF token or it has expired: reload the page.")
