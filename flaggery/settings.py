"""Settings: read once from ``FLAGGERY_*`` environment variables, then passed explicitly.

    settings = Settings.from_env()                       # the server's process environment
    settings = Settings.from_env({}, admin_mode=True)    # tests: explicit values win

The ``flaggery`` command's flags mirror the variables one to one (``--db-url`` is
``FLAGGERY_DB_URL``). The admin token is a secret: ``repr()`` hides it and nothing logs it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

from flaggery.store.urls import async_url, is_sqlite

__all__ = ["DEFAULT_DB_URL", "Settings", "SettingsError", "parse_bool"]

DEFAULT_DB_URL = "sqlite:///flaggery.db"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
SECRETS = ("admin_token", "client_tokens")
"""Settings that repr() hides and nothing logs."""


class SettingsError(ValueError):
    """A setting has a value flaggery cannot use; the message says which and what to write."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable. Build it with ``from_env``; construct directly only in tests."""

    db_url: str = DEFAULT_DB_URL
    """SQLAlchemy URL; ``postgresql://`` in production, an SQLite file by default."""
    db_auto_upgrade: bool = True
    """Migrate the database on start. Default: true for SQLite, false for PostgreSQL."""
    admin_mode: bool = False
    """False: read-only server, admin routes answer 423 NotAdmin."""
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    """If set, admin routes need ``Authorization: Bearer <token>``."""
    client_tokens: str | None = dataclasses.field(default=None, repr=False)
    """Comma-separated tokens of the ``client`` role. If set, the serving routes (flags,
    subject, OFREP, its event stream) need one (or the admin token) as ``Authorization:
    Bearer <token>`` or ``X-API-Key: <token>``; unset, they are open (as in 0.2.1)."""
    cors_origins: str | None = None
    """Comma-separated origins (``https://app.example.com``, or ``*``) whose browsers may call
    the serving routes; unset: no CORS headers at all."""
    snapshot_path: str | None = None
    """If set, the last good snapshot is saved there, and served from there when the process
    starts while the database is unreachable."""
    enable_prometheus: bool = False
    enable_docs: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False

    def __repr__(self) -> str:
        fields = [
            f"{field.name}={getattr(self, field.name)!r}"
            for field in dataclasses.fields(self)
            if field.name not in SECRETS
        ]
        hidden = [
            f"{name}={'None' if getattr(self, name) is None else repr('***')}" for name in SECRETS
        ]
        return f"Settings({', '.join(fields + hidden)})"

    @property
    def client_token_list(self) -> tuple[str, ...]:
        """`client_tokens` split at commas, blanks dropped."""
        return _split_list(self.client_tokens)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """`cors_origins` split at commas, blanks dropped."""
        return _split_list(self.cors_origins)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Values from ``explicit`` (None means "not given"), else ``FLAGGERY_<NAME>``, else
        the default. Raises SettingsError naming the variable of any value it cannot use."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            given = explicit.pop(field.name, None)
            variable = f"FLAGGERY_{field.name.upper()}"
            if given is not None:
                values[field.name] = given
            elif env.get(variable, "").strip():
                values[field.name] = _parse(field.name, variable, env[variable].strip())
        if explicit:
            raise TypeError(f"Unknown settings: {', '.join(sorted(explicit))}")
        if "db_auto_upgrade" not in values:
            url = _database_url(values.get("db_url", DEFAULT_DB_URL))
            values["db_auto_upgrade"] = is_sqlite(url)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        _database_url(self.db_url)
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"FLAGGERY_PORT must be from 0 to 65535, got {self.port}.")
        if self.workers < 1:
            raise SettingsError(f"FLAGGERY_WORKERS must be at least 1, got {self.workers}.")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(
                f"FLAGGERY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                f"got {self.log_level!r}."
            )
        if self.admin_token is not None and not self.admin_token.strip():
            raise SettingsError("FLAGGERY_ADMIN_TOKEN is set but blank: unset it or give one.")
        if self.client_tokens is not None and not self.client_token_list:
            raise SettingsError("FLAGGERY_CLIENT_TOKENS is set but blank: unset it or give one.")
        for origin in self.cors_origin_list:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise SettingsError(
                    "FLAGGERY_CORS_ORIGINS must list origins such as https://app.example.com "
                    f"(or *), got {origin!r}."
                )

    def check_exposure(self) -> None:
        """Refuse an unauthenticated admin server on an address other machines can reach."""
        if self.admin_mode and self.admin_token is None and not is_loopback(self.host):
            raise SettingsError(
                f"Refusing to serve the admin API on {self.host} without a token: anyone who "
                "can reach this address could change every flag. Set FLAGGERY_ADMIN_TOKEN "
                "(or --admin-token) to a long random secret, or bind to 127.0.0.1."
            )

    def to_env(self) -> dict[str, str]:
        """The ``FLAGGERY_*`` variables that rebuild these settings in another process."""
        env: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[f"FLAGGERY_{field.name.upper()}"] = str(value)
        return env


def _split_list(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _database_url(text: str) -> URL:
    try:
        return async_url(text)
    except Exception as error:
        raise SettingsError(
            f"FLAGGERY_DB_URL is not a database URL flaggery can use: {error}"
        ) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_bool(variable: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(
        f"{variable} must be a boolean (1/0, true/false, yes/no, on/off), got {text!r}."
    )


def _parse(name: str, variable: str, text: str) -> Any:
    default = getattr(Settings, name, None)
    if isinstance(default, bool):
        return parse_bool(variable, text)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{variable} must be an integer, got {text!r}.") from None
    if name == "log_level":
        return text.lower()
    return text
