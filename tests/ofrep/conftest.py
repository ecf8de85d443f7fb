"""The HTTP fixtures (an app over a fresh database, SQLite then PostgreSQL), shared."""

from tests.http.conftest import client, make_client

__all__ = ["client", "make_client"]
