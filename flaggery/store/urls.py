"""Database URLs: accept what users paste from flaggery 0.2.1, use the async drivers."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

__all__ = ["async_url", "is_postgres", "is_sqlite", "libpq_dsn"]

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str | URL) -> URL:
    """``postgresql://``, ``postgresql+psycopg2://`` and ``sqlite:///path`` become async URLs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"Unsupported database URL scheme {parsed.drivername!r}: "
            "use postgresql://user@host/db or sqlite:///path/to/file.db"
        )
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def is_postgres(url: URL) -> bool:
    return url.get_backend_name() in ("postgresql", "postgres")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def libpq_dsn(url: URL) -> str:
    """The plain ``postgresql://`` DSN asyncpg.connect() takes, for the LISTEN connection."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
