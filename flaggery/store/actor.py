"""Who makes a write: the actor recorded on its change-log row.

The HTTP guard sets it per request to the token's name (`acting_as`); a Python caller gives it
once, ``AsyncFlaggery.from_db_url(url, actor="deploy-bot")``, and otherwise gets
`default_actor()`. A context variable carries the request's actor to the write without
threading it through every admin method, and cannot leak between concurrent requests.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["ANONYMOUS", "MAX_ACTOR_LENGTH", "acting_as", "current_actor", "default_actor"]

MAX_ACTOR_LENGTH = 200
ANONYMOUS = "anonymous"
"""The actor of a REST write on a server that requires no token."""

_actor: ContextVar[str | None] = ContextVar("flaggery_actor", default=None)


def default_actor() -> str:
    """The OS user running this process (``getpass.getuser()``), or "unknown" where there
    is none (a container without a passwd entry)."""
    try:
        return getpass.getuser()[:MAX_ACTOR_LENGTH] or "unknown"
    except (OSError, KeyError):
        return "unknown"


def current_actor() -> str | None:
    """The actor set by an enclosing `acting_as`, or None."""
    return _actor.get()


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Writes made inside this block (in this task) record ``actor``."""
    token = _actor.set(actor[:MAX_ACTOR_LENGTH])
    try:
        yield
    finally:
        _actor.reset(token)
