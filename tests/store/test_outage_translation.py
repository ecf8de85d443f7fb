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
        wrapped_by_sqlalchemy(asyncpg.InvalidCatalogNameError('database "x" does not exist')),
        wrapped_by_sqlalchemy(asyncpg.InvalidAuthorizationSpecificationError("role NOLOGIN")),
        wrapped_by_sqlalchemy(asyncpg.InvalidPasswordError("password authentication failed")),
        wrapped_by_sqlalchemy(asyncpg.TooManyConnectionsError("too many connections")),
        wrapped_by_sqlalchemy(asyncpg.DatabaseDroppedError("database dropped")),
        asyncpg.InvalidCatalogNameError('database "x" does not exist'),
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
        wrapped_by_sqlalchemy(asyncpg.UndefinedColumnError('column "x" does not exist')),
        sqlalchemy.exc.OperationalError("SELECT", None, Exception("no such table: flaggery_state")),
    ],
    ids=type,
)
def test_a_missing_schema_says_to_upgrade(error: Exception) -> None:
    with pytest.raises(DatabaseUnavailable, match="run `flaggery db upgrade`"), translate_outage():
        raise error


@pytest.mark.parametrize(
    "error",
    [
        wrapped_by_sqlalchemy(asyncpg.QueryCanceledError("canceling statement")),
        sqlalchemy.exc.IntegrityError("INSERT", None, Exception("duplicate key")),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_other_errors_pass_through(error: Exception) -> None:
    with pytest.raises(type(error)), translate_outage():
        raise error
