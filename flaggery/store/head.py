"""Where the database's history stands, and whether it continues the history a replica applied.

A replica remembers the `Head` it last applied: the database's identity, the revision, and the
random change id of that revision's write. History was rewritten (a backup restored, another
database put behind the same URL) when the identity differs, the revision went back, or the
change-log row of the replica's revision carries another change id. Only a full reload is right
then; applying the log onto the old base would mix two histories.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Head", "rewritten"]


class Head(NamedTuple):
    """A point in one database's history."""

    database_id: str | None
    """Given at migration (revision 0002); None only before it."""
    revision: int
    change_id: str | None
    """Random id of the write that made `revision`; None at 0 and for writes before 0002."""


def rewritten(applied: Head, current: Head) -> str | None:
    """Why `current` cannot follow `applied` by change-log rows alone, or None if it may.

    Compares heads only: whether the rows in between continue `applied` is for the loader.
    """
    if current.database_id != applied.database_id:
        return f"another database is behind the URL (identity {current.database_id})"
    if current.revision < applied.revision:
        return f"the revision went back from {applied.revision} to {current.revision}"
    if current.revision == applied.revision and current.change_id != applied.change_id:
        return f"revision {current.revision} was made by another write"
    return None
