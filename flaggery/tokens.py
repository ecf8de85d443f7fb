"""Named API tokens and their roles: who may call what, and whose name a change carries.

The format, in ``FLAGGERY_TOKENS`` or the file named by ``FLAGGERY_TOKENS_FILE``: entries
``name:role:secret`` separated by whitespace (one per line in a file reads best); ``#`` starts a
comment that runs to the end of its line. The secret is everything after the second colon, so it
may itself hold colons. For example::

    # name      role    secret
    deploy-bot:admin:4f9c0d...
    grafana:reader:77ab12...

A role grants its own routes and every lower role's: ``admin`` > ``reader`` > ``client``.
``guard`` stands apart: it may call the guard route only (POST /v1/guard/alertmanager,
which an admin token may call too), and nothing else.
The token's name is the actor recorded on every change it makes. Secrets never appear in
``repr`` or messages; they are looked up in one place, flaggery.access.Keyring.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable

__all__ = [
    "NamedToken",
    "Role",
    "TokenFormatError",
    "lists_no_entry",
    "parse_tokens",
]

# An HTTP header cannot carry controls and loses edge spaces: printable ASCII only.
_SECRET = re.compile(r"[\x21-\x7e]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_COMMENT = re.compile(r"#[^\n]*")


class TokenFormatError(ValueError):
    """A token entry cannot be used; the message says which entry (by position, never its
    text) and why."""


class Role(enum.IntEnum):
    """What a token may do; a higher role includes every lower one. One enum for every
    route's guard."""

    GUARD = 1
    """The guard route only (an alerting system's webhook that pauses or rolls back a release
    plan or fires a kill switch): no flags, no reads, no other write."""
    CLIENT = 5
    """The serving routes (flags, explain, OFREP), when client tokens are configured
    (flaggery.access.Keyring); they are open otherwise, as in 0.2.1."""
    READER = 10
    """Read-only admin routes, history, the snapshot and the change stream."""
    ADMIN = 20
    """Everything, writes included."""

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (lower case); raises TokenFormatError listing the roles."""
        roles = {role.name.lower(): role for role in cls}
        if text not in roles:
            raise TokenFormatError(f"unknown role {text!r} (roles: {', '.join(roles)})")
        return roles[text]

    def allows(self, needed: Role) -> bool:
        if Role.GUARD in (self, needed):
            return self is needed or self is Role.ADMIN
        return self >= needed


@dataclasses.dataclass(frozen=True)
class NamedToken:
    name: str
    """Recorded as the actor of every change made with this token."""
    role: Role
    secret: bytes = dataclasses.field(repr=False)


def parse_tokens(text: str) -> tuple[NamedToken, ...]:
    """The entries of ``text`` (the format above). Raises TokenFormatError for a malformed
    entry, an unknown role, a blank secret, or a name or secret given twice."""
    tokens = [_parse_entry(number, entry) for number, entry in _entries(text)]
    _require_unique(tokens)
    return tuple(tokens)


def lists_no_entry(text: str) -> bool:
    """Whether ``text`` holds no entry at all: only whitespace and comments."""
    return not _COMMENT.sub("", text).split()


def _entries(text: str) -> Iterable[tuple[int, str]]:
    return enumerate(_COMMENT.sub("", text).split(), start=1)


def _parse_entry(number: int, entry: str) -> NamedToken:
    name, _, rest = entry.partition(":")
    role, _, secret = rest.partition(":")
    # By position only: an entry that does not parse may be a secret pasted alone.
    where = f"token entry {number}"
    if ":" not in entry:
        # Most often a space inside an entry ("a b:admin:x"): whitespace separates entries.
        raise TokenFormatError(
            f"{where} has no ':', so it is not name:role:secret; entries are separated by "
            "whitespace (spaces, newlines), so a name, role or secret cannot contain a space"
        )
    if not _NAME.fullmatch(name):
        raise TokenFormatError(
            f"{where}: a name is 1-64 letters, digits, '_', '.', '@' or '-', starting with a "
            "letter or digit; write entries as name:role:secret"
        )
    if not secret:
        raise TokenFormatError(f"{where}: the secret is blank; write entries as name:role:secret")
    if not _SECRET.fullmatch(secret):
        raise TokenFormatError(f"{where}: the secret may hold only printable ASCII")
    try:
        parsed_role = Role.parse(role)
    except TokenFormatError as error:
        raise TokenFormatError(f"{where}: {error}") from None
    return NamedToken(name, parsed_role, secret.encode())


def _require_unique(tokens: list[NamedToken]) -> None:
    names = [token.name for token in tokens]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TokenFormatError(f"token names must be unique; given twice: {', '.join(twice)}")
    if len({token.secret for token in tokens}) < len(tokens):
        raise TokenFormatError("two tokens share a secret: give each its own")
