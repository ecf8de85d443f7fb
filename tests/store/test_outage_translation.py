"""Every way of not reaching the database becomes DatabaseUnavailable, and nothing else does."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc

from flaggery.errors import DatabaseUnavailable
from flaggery.store.database import translate_outage


def wrapped_by_sqlalchemy(raw: Exception) -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy's asyncpg adapter raises for a server error it has no DB-API class for."""
    adapted = Exception(str(raw))
    adapted.__cause__ = raw
    return sqlalchemy.exc.DBAPIError("SELECT 1", None, adapted)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        wrapped_by_sqlalchemy(asyncpg.CannotConnectNowError("the database system is starting up")),
        wrapped_by_sqlalchemy(asyncpg.AdminShutdownError("terminating connection")),
        wrapped_by_sqlalchemy(asyncpg.ConnectionDoesNotExistError("connection was closed")),
        sqlalchemy.exc.OperationalError("SELECT 1", None, Exception("unable to open database")),
    ],
    ids=type,
)
def test_outages_become_database_unavailable(error: Exception) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"unreachable .*Retry"), translate_outage():
        raise error


@pytest.mark.parametrize(
    "error",
    [
        wrapped_by_sqlalchemy(asyncpg.UndefinedTableError('relation "subjects" does not exist')),
        sqlalchemy.exc.IntegrityError("INSERT", None, Exception("duplicate key")),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_other_errors_pass_through(error: Exception) -> None:
    with pytest.raises(type(error)), translate_outage():
        raise error
