"""Settings: read once from ``FLAGGERY_*`` environment variables, then passed explicitly.

    settings = Settings.from_env()                       # the server's process environment
    settings = Settings.from_env({}, admin_mode=True)    # tests: explicit values win

The ``flaggery`` command's flags mirror the variables one to one (``--db-url`` is
``FLAGGERY_DB_URL``). The admin token is a secret: ``repr()`` hides it and nothing logs it.

One rule for every value, whether it comes from a variable or a flag: text goes through the
same parser (``parse_value``), and a value that is given but blank is an error, never "unset"
(an unset variable is the only way to ask for the default). A secret file that failed to
mount therefore stops the server instead of opening the admin API.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import resource
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.store.urls import async_url, is_sqlite
from flaggery.tokens import NamedToken, Role, TokenFormatError, lists_no_entry, parse_tokens

__all__ = [
    "DEFAULT_DB_URL",
    "MIN_TOKEN_SECRET",
    "Settings",
    "SettingsError",
    "is_loopback",
    "parse_bool",
    "parse_value",
    "strong_secret",
]

DEFAULT_DB_URL = "sqlite:///flaggery.db"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Python's float() also takes "1_000", "٣", "inf" and "nan"; a setting takes plain ASCII
# decimals only (integers: flaggery.decimal_text).
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_MAX_WHOLE_DIGITS = 9
# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")
# The token travels in an HTTP header, which cannot carry controls and loses edge spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")
# Each worker is a process with its own snapshot (memory), LISTEN connection and pool, and an
# async worker keeps a core busy by itself: more workers than cores add only memory and
# database connections (1,000 forked 1,000 processes and exhausted PostgreSQL's
# connections). 64 is above any core count flaggery is deployed on.
MAX_WORKERS = 64
SECRETS = ("admin_token", "client_tokens", "tokens", "upstream_token", "session_secret")
"""Settings that repr() hides and nothing logs."""
TOKEN_LISTS = frozenset({"client_tokens"})
"""Secrets that list several tokens, separated by commas."""
MIN_SESSION_SECRET = 32
STREAM_HEADROOM = 256
"""File descriptors FLAGGERY_MAX_STREAMS must leave for everything else."""
MIN_TOKEN_SECRET = 32
"""Characters of a reader or admin token's secret on a server other machines can reach."""
MIN_TOKEN_DISTINCT = 8
# FLAGGERY_ADMIN_TOKEN is one admin token by this name (the actor of its changes).
ADMIN_TOKEN_NAME = "admin"
INTEGER_RANGES = {
    "port": (0, 65535),
    "workers": (1, MAX_WORKERS),
    "change_log_retention_revisions": (0, 10**12),
    "change_log_retention_days": (0, 36_500),
    "max_streams": (1, 1_000_000),
}
"""Each integer setting's bounds, both inclusive."""
SECONDS_RANGES = {
    "min_revision_wait": (0.0, 300.0, True),
    "stream_keepalive": (0.0, 3600.0, False),
    "read_timeout": (0.0, 86_400.0, False),
}
"""Each seconds setting's bounds: low, high (inclusive), whether low itself is allowed."""


class SettingsError(ValueError):
    """A setting has a value flaggery cannot use; the message says which and what to write."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable. Build it with ``from_env``; construct directly only in tests.
    Every instance is valid: construction raises SettingsError otherwise."""

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
    allowed_hosts: str | None = None
    """Comma-separated host names (no port) that a server open because it is on loopback also
    answers, besides localhost, 127.0.0.0/8 and [::1] (flaggery.access.hosts)."""
    max_streams: int | None = None
    """Event streams (GET /v1/stream, /ui/stream, /ofrep/v1/events) one process serves at once;
    beyond it 503. Unset: half the process's file-descriptor limit (RLIMIT_NOFILE), the other
    half kept for serving, the database and files (flaggery.stream.send_watch)."""
    cors_origins: str | None = None
    """Comma-separated origins (``https://app.example.com``, or ``*``) whose browsers may call
    the serving routes; unset: no CORS headers at all."""
    tokens: str | None = dataclasses.field(default=None, repr=False)
    """Named tokens with roles, ``name:role:secret`` entries (format: flaggery.tokens)."""
    tokens_file: str | None = None
    """A file of named tokens in the same format, read once at start."""
    upstream_url: str | None = None
    """If set, an edge: a read-only server with no database that follows this flaggery
    server's GET /v1/snapshot and GET /v1/stream (Evaluator.from_upstream)."""
    upstream_token: str | None = dataclasses.field(default=None, repr=False)
    """A reader token for the upstream, if it requires tokens."""
    session_secret: str | None = dataclasses.field(default=None, repr=False)
    """Signs the dashboard's session cookie (with the token secrets, if any), so every worker
    and restart accepts it. Unset: the ``flaggery`` command makes one for its workers when no
    token is configured; a process started otherwise without tokens uses a random key."""
    snapshot_path: str | None = None
    """If set, the last good snapshot is saved there, and served from there when the process
    starts while the database is unreachable."""
    change_log_retention_revisions: int = 100_000
    """The admin server prunes change-log rows older than this many revisions (0: no bound)."""
    change_log_retention_days: int = 0
    """... and rows older than this many days (0: no bound). The latest row always stays."""
    min_revision_wait: float = 5.0
    """Seconds a read with ``X-Flaggery-Min-Revision`` waits for this server to reach that
    revision before answering 503 RevisionNotReached."""
    stream_keepalive: float = 15.0
    """Seconds between keep-alive comments on an idle GET /v1/stream."""
    enable_prometheus: bool = False
    enable_docs: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False
    read_timeout: float = 60.0
    """Seconds a client may take to send one request, headers and body, from its first byte
    (or from connecting); then the connection is closed."""

    def __post_init__(self) -> None:
        self.validate()

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
    def allowed_host_list(self) -> tuple[str, ...]:
        """`allowed_hosts` split at commas, blanks dropped."""
        return _split_list(self.allowed_hosts)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """`cors_origins` split at commas, blanks dropped."""
        return _split_list(self.cors_origins)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Values from ``explicit`` (None means "not given"; text is parsed like a variable),
        else ``FLAGGERY_<NAME>`` if the variable exists, else the default. Raises
        SettingsError naming the variable of any value it cannot use, blank ones included."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            given = explicit.pop(field.name, None)
            variable = f"FLAGGERY_{field.name.upper()}"
            if given is None:
                given = env.get(variable)
            if isinstance(given, str):
                given = parse_value(field.name, given)
            if given is not None:
                values[field.name] = given
        if explicit:
            raise TypeError(f"Unknown settings: {', '.join(sorted(explicit))}")
        if "db_auto_upgrade" not in values:
            url = _database_url(values.get("db_url", DEFAULT_DB_URL))
            values["db_auto_upgrade"] = is_sqlite(url)
        return cls(**values)

    def validate(self) -> None:
        _database_url(self.db_url)
        for name, (low, high) in INTEGER_RANGES.items():
            value = getattr(self, name)
            if value is not None:
                _require_range(name, value, low, high)
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(
                f"FLAGGERY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                f"got {self.log_level!r}."
            )
        for name, (low_seconds, high_seconds, low_allowed) in SECONDS_RANGES.items():
            seconds = getattr(self, name)
            if not (
                math.isfinite(seconds)
                and (low_seconds <= seconds if low_allowed else low_seconds < seconds)
                and seconds <= high_seconds
            ):
                raise SettingsError(
                    f"FLAGGERY_{name.upper()} must be seconds, {_seconds_range(name)}, "
                    f"got {seconds!r}."
                )
        _check_host(self.host)
        if self.upstream_url is not None:
            _check_upstream(self.upstream_url, self.admin_mode)
        for name in self.allowed_host_list:
            _check_host_name(name)
        names = (
            "db_url",
            "tokens_file",
            "upstream_url",
            "snapshot_path",
            "host",
            "cors_origins",
            "allowed_hosts",
        )
        for name in (*names, *SECRETS):
            value = getattr(self, name)
            if value is not None:
                parse_value(name, value)  # the same rule for values given in code
        if self.session_secret is not None and len(self.session_secret) < MIN_SESSION_SECRET:
            raise SettingsError(
                f"FLAGGERY_SESSION_SECRET must be at least {MIN_SESSION_SECRET} characters: "
                "a long random secret, such as the output of `openssl rand -hex 32`."
            )
        if self.client_tokens is not None and not self.client_token_list:
            raise SettingsError("FLAGGERY_CLIENT_TOKENS lists no token: unset it or give one.")
        for origin in self.cors_origin_list:
            _check_origin(origin)
        named = self.named_tokens()
        if self.tokens is not None and lists_no_entry(self.tokens):
            raise SettingsError(
                "FLAGGERY_TOKENS lists no token (only comments or whitespace): unset it to need "
                "no token, or give name:role:secret entries."
            )
        _refuse_shared_secrets(named, self.client_token_list)

    def check_startup(self) -> None:
        """What only the machine the server starts on can tell: FLAGGERY_HOST resolves to an
        address, FLAGGERY_SNAPSHOT_PATH names a file (not a directory) in a directory that
        exists and this process may write, and FLAGGERY_MAX_STREAMS leaves STREAM_HEADROOM
        file descriptors for serving. Raises SettingsError naming the variable."""
        try:
            socket.getaddrinfo(self.host.strip("[]"), self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise SettingsError(
                f"FLAGGERY_HOST {self.host!r} does not resolve to an address to bind ({error}); "
                "give an IP address such as 127.0.0.1 or 0.0.0.0, or a host name of this machine."
            ) from None
        if self.snapshot_path is not None:
            _check_snapshot_path(self.snapshot_path)
        if self.max_streams is not None:
            _check_stream_headroom(self.max_streams)

    def named_tokens(self) -> tuple[NamedToken, ...]:
        """Every configured token: FLAGGERY_ADMIN_TOKEN (as admin token "admin"), then
        FLAGGERY_TOKENS, then the entries of FLAGGERY_TOKENS_FILE (read on each call; the
        server calls it once at start). Empty: no route needs a token. Raises SettingsError
        for a malformed entry, a blank secret, a duplicate, or a file that cannot be read."""
        text = "" if self.tokens is None else self.tokens
        if self.tokens_file is not None:
            listed = _read_tokens_file(self.tokens_file)
            if lists_no_entry(listed):
                raise SettingsError(
                    f"FLAGGERY_TOKENS_FILE ({self.tokens_file}) lists no token (it is empty, or "
                    "only comments): a secret that failed to mount? Unset the variable to need "
                    "no token, or give name:role:secret entries."
                )
            text += "\n" + listed
        if self.admin_token is not None:
            text = f"{ADMIN_TOKEN_NAME}:admin:{self.admin_token}\n{text}"
        try:
            return parse_tokens(text)
        except TokenFormatError as error:
            raise SettingsError(
                f"FLAGGERY_ADMIN_TOKEN, FLAGGERY_TOKENS or FLAGGERY_TOKENS_FILE: {error}."
            ) from None

    def check_exposure(self) -> None:
        """Refuse an unauthenticated admin server on an address other machines can reach, and
        an edge that would serve without a token what its upstream serves only with one."""
        if self.admin_mode and not self.requires_tokens and not is_loopback(self.host):
            raise SettingsError(
                f"Refusing to serve the admin API on {self.host} without a token: anyone who "
                "can reach this address could change every flag. Set FLAGGERY_ADMIN_TOKEN "
                "(or --admin-token) to a long random secret, or FLAGGERY_TOKENS(_FILE), or "
                "bind to 127.0.0.1."
            )
        if not is_loopback(self.host):
            _require_strong_secrets(self.named_tokens(), self.host)
        if self.upstream_token is not None and not self.requires_tokens:
            raise SettingsError(
                "Refusing to start an edge with FLAGGERY_UPSTREAM_TOKEN but no token of its "
                "own: its snapshot, stream and history routes would give anyone what the "
                "upstream gives only to readers. Set FLAGGERY_TOKENS or FLAGGERY_TOKENS_FILE "
                "(name:reader:secret entries for the edges and readers below this one)."
            )

    @property
    def reader_routes_closed(self) -> bool:
        """Whether reader routes refuse every request: no token is configured, so none can
        be presented, and other machines can reach this address (FLAGGERY_HOST)."""
        return not self.requires_tokens and not is_loopback(self.host)

    @property
    def requires_tokens(self) -> bool:
        """Whether guarded routes want a token (any is configured)."""
        return bool(self.named_tokens())

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


def parse_value(name: str, text: str) -> Any:
    """The text of setting ``name`` (from a variable or a flag) as the setting's type.

    Blank text is an error for every setting; so is a secret with characters an HTTP header
    cannot carry. Numbers are plain ASCII decimals. Raises SettingsError naming the variable.
    """
    variable = f"FLAGGERY_{name.upper()}"
    # A list of tokens is blank when it lists none (" , " as much as "").
    tokens = _split_list(text) if name in TOKEN_LISTS else (text,)
    if not any(token.strip() for token in tokens):
        raise SettingsError(
            f"{variable} is set but blank: unset it to use the default, or give a value."
        )
    if name == "tokens":
        return text  # entries are checked by flaggery.tokens, which names the bad one
    if name in SECRETS:
        if not all(_TOKEN.fullmatch(token) for token in tokens):
            raise SettingsError(
                f"{variable} may hold only printable ASCII without spaces (it is sent in an "
                "HTTP header); check the file or variable it is read from."
            )
        return text
    kind = int if name in INTEGER_RANGES else type(getattr(Settings, name, ""))
    return _PARSERS.get(kind, _text)(variable, text.strip())


def parse_bool(variable: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(
        f"{variable} must be a boolean (1/0, true/false, yes/no, on/off), got {text!r}."
    )


def _parse_int(variable: str, text: str) -> int:
    low, high = INTEGER_RANGES[_setting(variable)]
    try:
        return parse_decimal(text, variable, low=low, high=high)
    except DecimalTextError as error:
        raise SettingsError(str(error)) from None


def _parse_float(variable: str, text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise SettingsError(
            f"{variable} must be a number of seconds such as 30 or 2.5, got {_excerpt(text)}."
        )
    if len(text.lstrip("+-").split(".")[0].lstrip("0")) > _MAX_WHOLE_DIGITS:
        raise SettingsError(
            f"{variable} must be seconds, {_seconds_range(_setting(variable))}, "
            f"got {_excerpt(text)}."
        )
    return float(text)


def _setting(variable: str) -> str:
    return variable.removeprefix("FLAGGERY_").lower()


def _seconds_range(name: str) -> str:
    low, high, low_allowed = SECONDS_RANGES[name]
    if low_allowed:
        return f"from {low:g} to {high:g}"
    return f"more than {low:g} and at most {high:g}"


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _text(variable: str, text: str) -> str:
    return text.lower() if variable == "FLAGGERY_LOG_LEVEL" else text


_PARSERS = {bool: parse_bool, int: _parse_int, float: _parse_float}


def _check_upstream(url: str, admin_mode: bool) -> None:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingsError(
            f"FLAGGERY_UPSTREAM_URL must be the http:// or https:// URL of a flaggery server, "
            f"got {url!r}."
        )
    if admin_mode:
        raise SettingsError(
            "An edge (FLAGGERY_UPSTREAM_URL) is read-only: unset FLAGGERY_ADMIN_MODE, and send "
            "writes to the admin server."
        )


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(host):
        raise SettingsError(
            f"FLAGGERY_HOST must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, "
            f"got {_excerpt(host)}."
        )


def _check_host_name(name: str) -> None:
    if ":" in name or not _HOSTNAME.fullmatch(name):
        raise SettingsError(
            "FLAGGERY_ALLOWED_HOSTS must list host names without a port, such as "
            f"flaggery.local, got {_excerpt(name)}."
        )


def _require_strong_secrets(tokens: tuple[NamedToken, ...], host: str) -> None:
    """Refuse a reader or admin secret that could be guessed: the server is reachable from
    other machines. Client tokens are exempt: they ship inside apps, where anyone can read
    them, and grant only flags."""
    for position, token in enumerate(tokens, start=1):
        if token.role >= Role.READER and not strong_secret(token.secret):
            raise SettingsError(
                f"Refusing to start on {host} with a weak secret: the {token.role.name.lower()} "
                f"token {token.name!r} (token {position} of FLAGGERY_ADMIN_TOKEN, "
                f"FLAGGERY_TOKENS, FLAGGERY_TOKENS_FILE) needs at least {MIN_TOKEN_SECRET} "
                f"characters with at least {MIN_TOKEN_DISTINCT} different ones, such as the "
                "output of `openssl rand -hex 32`; or bind to 127.0.0.1."
            )


def strong_secret(secret: bytes) -> bool:
    """Whether ``secret`` is long and varied enough for a server other machines can reach:
    MIN_TOKEN_SECRET characters, MIN_TOKEN_DISTINCT of them different (32 hex digits carry
    128 bits, and 32 of them have fewer than 8 different ones about never; the second rule
    refuses 'aaaa...' and 'abcabc...')."""
    return len(secret) >= MIN_TOKEN_SECRET and len(set(secret)) >= MIN_TOKEN_DISTINCT


def _check_origin(origin: str) -> None:
    """An origin is scheme://host[:port], exactly what browsers send in Origin: nothing else
    would ever match, so a path (even '/'), query, fragment or user is refused."""
    if origin == "*":
        return
    parts = urlsplit(origin)
    try:
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in origin
        or "#" in origin
    ):
        raise SettingsError(
            "FLAGGERY_CORS_ORIGINS must list origins, scheme://host[:port] with no path, query "
            f"or fragment, such as https://app.example.com (or *), got {_excerpt(origin)}."
        )


def _refuse_shared_secrets(named: tuple[NamedToken, ...], client_tokens: tuple[str, ...]) -> None:
    """A secret of two roles would grant the higher one to whoever holds it for the lower:
    FLAGGERY_TOKENS refuses shared secrets itself; this covers FLAGGERY_CLIENT_TOKENS."""
    for token in named:
        if token.secret.decode() in client_tokens:
            raise SettingsError(
                f"FLAGGERY_CLIENT_TOKENS holds the secret of the {token.role.name.lower()} "
                f"token {token.name!r}: give every role its own secrets."
            )


def _check_stream_headroom(max_streams: int) -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and max_streams > soft - STREAM_HEADROOM:
        raise SettingsError(
            f"FLAGGERY_MAX_STREAMS {max_streams} would leave fewer than {STREAM_HEADROOM} of this "
            f"process's {soft} file descriptors (ulimit -n) for serving, the database and "
            "files: lower it, raise the limit, or unset it (half the limit)."
        )


def _check_snapshot_path(path: str) -> None:
    target = Path(path)
    problem = None
    if target.is_dir():
        problem = "it is a directory; name a file in it"
    elif not target.parent.is_dir():
        problem = f"its directory {str(target.parent)!r} does not exist"
    elif not os.access(target.parent, os.W_OK | os.X_OK):
        problem = f"this process may not write in its directory {str(target.parent)!r}"
    elif target.exists() and not target.is_file():
        problem = "it exists and is not a regular file"
    if problem is not None:
        raise SettingsError(f"FLAGGERY_SNAPSHOT_PATH {path!r} cannot hold the snapshot: {problem}.")


def _read_tokens_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"FLAGGERY_TOKENS_FILE cannot be read: {error}") from None


def _require_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"FLAGGERY_{name.upper()} must be from {low} to {high}, got {value!r}.")


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
