"""Settings: read once from ``FLAGGERY_*`` environment variables, then passed explicitly.

    settings = Settings.from_env()                       # the server's process environment
    settings = Settings.from_env({}, admin_mode=True)    # tests: explicit values win

Each field says its group, help and flag (`_field`); the ``flaggery`` command generates one
flag per field from them (``--db-url`` is ``FLAGGERY_DB_URL``), so a new setting has its flag
and its line in ``--help``. Secrets (`SECRETS`) are hidden by ``repr()`` and never logged, and
may be read from a file instead (``FLAGGERY_ADMIN_TOKEN_FILE``, `SECRET_FILES`). Files are read
once, when the settings are built: the tokens file too (`named_tokens`).

One rule for every value, whether it comes from a variable or a flag: text goes through the
same parser (``parse_value``), and a value that is given but blank is an error, never "unset"
(an unset variable is the only way to ask for the default). A secret file that failed to
mount therefore stops the server instead of opening the admin API.
"""

from __future__ import annotations

import dataclasses
import functools
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

from sqlalchemy.engine import URL, make_url

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.store.urls import async_url, is_sqlite
from flaggery.tokens import NamedToken, Role, TokenFormatError, lists_no_entry, parse_tokens

__all__ = [
    "DEFAULT_DB_URL",
    "GUARD_ACTIONS",
    "MIN_TOKEN_SECRET",
    "SECRETS",
    "SECRET_FILES",
    "Settings",
    "SettingsError",
    "is_loopback",
    "parse_bool",
    "parse_value",
    "strong_secret",
]

DEFAULT_DB_URL = "sqlite:///flaggery.db"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")
GUARD_ACTIONS = ("pause", "rollback", "kill")
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
    "exposure_flush_interval": (0.01, 60.0, True),
    "read_timeout": (0.0, 86_400.0, False),
    "webhook_failing_after": (0.0, 30 * 86_400.0, False),
}
"""Each seconds setting's bounds: low, high (inclusive), whether low itself is allowed."""


class SettingsError(ValueError):
    """A setting has a value flaggery cannot use; the message says which and what to write."""


def _field(  # noqa: PLR0913 - keyword-only options of a field
    default: Any,
    group: str,
    help: str,
    *,
    flag: str | None = None,
    secret: bool = False,
    shown_default: str | None = None,
) -> Any:
    """A settings field with what its command-line flag needs: the argparse group, a one-line
    help, the flag's name when it is not ``--`` and the field's name in kebab case, and the
    default as ``--help`` says it when that is not `default`. A secret is hidden from repr()
    and may also be read from a file (``FLAGGERY_<NAME>_FILE``, see `SECRET_FILES`)."""
    metadata = {
        "group": group,
        "help": help,
        "flag": flag,
        "secret": secret,
        "default": shown_default,
    }
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable. Build it with ``from_env``; construct directly only in tests.
    Every instance is valid: construction raises SettingsError otherwise."""

    db_url: str = _field(
        DEFAULT_DB_URL, "database", "database URL; postgresql:// in production", flag="--db-url"
    )
    """SQLAlchemy URL; ``postgresql://`` in production, an SQLite file by default."""
    db_auto_upgrade: bool = _field(
        True, "database", "migrate the database on start", shown_default="yes for SQLite only"
    )
    """Migrate the database on start. Default: true for SQLite, false for PostgreSQL."""
    admin_mode: bool = _field(False, "access", "serve the admin API", flag="--admin")
    """False: read-only server, admin routes answer 423 NotAdmin."""
    admin_token: str | None = _field(
        None, "access", "bearer token of the admin routes", secret=True
    )
    """If set, admin routes need ``Authorization: Bearer <token>``."""
    client_tokens: str | None = _field(
        None, "access", "comma-separated tokens the serving and OFREP routes then need", secret=True
    )
    """Comma-separated tokens of the ``client`` role. If set, the serving routes (flags,
    subject, OFREP, its event stream) need one (or the admin token) as ``Authorization:
    Bearer <token>`` or ``X-API-Key: <token>``; unset, they are open (as in 0.2.1)."""
    allowed_hosts: str | None = _field(
        None, "access", "comma-separated host names an open loopback server also answers"
    )
    """Comma-separated host names (no port) that a server open because it is on loopback also
    answers, besides localhost, 127.0.0.0/8 and [::1] (flaggery.access.hosts)."""
    max_streams: int | None = _field(
        None,
        "serving",
        "event streams one worker serves at once, beyond it 503",
        shown_default="half the file-descriptor limit",
    )
    """Event streams (GET /v1/stream, /ui/stream, /ofrep/v1/events) one process serves at once;
    beyond it 503. Unset: half the process's file-descriptor limit (RLIMIT_NOFILE), the other
    half kept for serving, the database and files (flaggery.stream.send_watch)."""
    cors_origins: str | None = _field(
        None, "access", "comma-separated origins browsers may call the serving routes from"
    )
    """Comma-separated origins (``https://app.example.com``, or ``*``) whose browsers may call
    the serving routes; unset: no CORS headers at all."""
    tokens: str | None = _field(
        None, "access", "named tokens, name:role:secret entries", secret=True
    )
    """Named tokens with roles, ``name:role:secret`` entries (format: flaggery.tokens)."""
    tokens_file: str | None = _field(
        None, "access", "a file of named tokens, name:role:secret entries, read once at start"
    )
    """A file of named tokens in the same format, read once when the settings are built."""
    upstream_url: str | None = _field(
        None, "edge", "follow this flaggery server instead of a database", flag="--upstream"
    )
    """If set, an edge: a read-only server with no database that follows this flaggery
    server's GET /v1/snapshot and GET /v1/stream (Evaluator.from_upstream)."""
    upstream_token: str | None = _field(
        None, "edge", "a reader token for the upstream", secret=True
    )
    """A reader token for the upstream, if it requires tokens."""
    session_secret: str | None = _field(
        None, "access", "signs the dashboard's session cookie (32+ characters)", secret=True
    )
    """Signs the dashboard's session cookie (with the token secrets, if any), so every worker
    and restart accepts it. Unset: the ``flaggery`` command makes one for its workers when no
    token is configured; a process started otherwise without tokens uses a random key."""
    snapshot_path: str | None = _field(
        None, "database", "keep the last good snapshot in this file; start from it offline"
    )
    """If set, the last good snapshot is saved there, and served from there when the process
    starts while the database is unreachable."""
    change_log_retention_revisions: int = _field(
        100_000, "database", "admin server: keep the change log of the last N revisions, 0 all"
    )
    """The admin server prunes change-log rows older than this many revisions (0: no bound)."""
    change_log_retention_days: int = _field(
        0, "database", "admin server: also drop change-log rows older than N days, 0 never"
    )
    """... and rows older than this many days (0: no bound). The latest row always stays."""
    min_revision_wait: float = _field(
        5.0, "serving", "seconds a read with X-Flaggery-Min-Revision waits for that revision"
    )
    """Seconds a read with ``X-Flaggery-Min-Revision`` waits for this server to reach that
    revision before answering 503 RevisionNotReached."""
    stream_keepalive: float = _field(
        15.0, "serving", "seconds between keep-alive comments on an idle GET /v1/stream"
    )
    """Seconds between keep-alive comments on an idle GET /v1/stream."""
    exposure_flush_interval: float = _field(
        1.0, "serving", "seconds between writes of the exposures this process accepted"
    )
    """Seconds between two writes of the exposures this process accepted (POST /v1/exposures)
    to the database, in one transaction: what a crash of the process can lose."""
    subject_attribute: str = _field(
        "subject", "serving", "context attribute naming a subject to bucket a request by"
    )
    """The evaluation-context attribute (OFREP, the OpenFeature provider) that names a
    registered subject to bucket a request by instead of its targeting key: with ``subject``,
    ``{"targetingKey": "visitor-1", "subject": "42"}`` gets subject 42's variants."""
    enable_prometheus: bool = _field(
        False, "serving", "serve Prometheus metrics at /metrics", flag="--prometheus"
    )
    enable_docs: bool = _field(
        True, "serving", "serve the OpenAPI document and /docs", flag="--docs"
    )
    webhook_allow_loopback: bool = _field(
        False, "webhooks", "webhooks may reach loopback addresses (127.0.0.0/8, ::1)"
    )
    """Let webhook subscriptions reach loopback addresses. Off: refused (SSRF,
    flaggery.store.webhook_targets); link-local and 169.254.169.254 are refused always."""
    webhook_allow_private: bool = _field(
        False, "webhooks", "webhooks may reach private ranges (10/8, 172.16/12, 192.168/16, ...)"
    )
    """Let webhook subscriptions reach private and shared address ranges. Off: refused."""
    webhook_failing_after: float = _field(
        3600.0, "webhooks", "seconds of failed deliveries after which a webhook is failing"
    )
    """Seconds of failed deliveries after which a subscription is marked failing (the
    dashboard, GET /v1/webhooks, flaggery_webhook_failing); it is still retried."""
    guard_action: str = _field(
        "pause", "webhooks", "what a firing guard alert does: pause, rollback or kill"
    )
    """What a firing alert on POST /v1/guard/alertmanager does to its feature when the alert
    has no ``flaggery_action`` label: ``pause`` its release plan, ``rollback`` it to 0, or
    ``kill`` (its kill switch)."""
    host: str = _field("127.0.0.1", "server", "bind address")
    port: int = _field(8000, "server", "port")
    workers: int = _field(1, "server", "worker processes")
    log_level: str = _field("info", "server", "/".join(LOG_LEVELS))
    log_format: str = _field("text", "server", "text, or json: one JSON object a line")
    """``text``: time, level, logger and message on each line; ``json``: one object a line,
    with ``revision``, ``route`` and ``actor`` where a line has them (flaggery.log_format)."""
    access_log: bool = _field(False, "server", "log every request")
    read_timeout: float = _field(
        60.0, "server", "seconds a client may take to send a request's headers and body"
    )
    """Seconds a client may take to send one request, headers and body, from its first byte
    (or from connecting); then the connection is closed."""

    def __post_init__(self) -> None:
        self.validate()

    def __repr__(self) -> str:
        fields = [
            f"{field.name}={getattr(self, field.name)!r}"
            for field in dataclasses.fields(self)
            if field.name not in SECRETS and field.name != "db_url"
        ]
        url = make_url(self.db_url).render_as_string(hide_password=True)
        hidden = [
            f"{name}={'None' if getattr(self, name) is None else repr('***')}" for name in SECRETS
        ]
        return f"Settings({', '.join([f'db_url={url!r}', *fields, *hidden])})"

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
        else ``FLAGGERY_<NAME>`` if the variable exists, else the default. A secret (and the
        database URL) may instead be read from a file: ``<name>_file`` explicitly, or
        ``FLAGGERY_<NAME>_FILE`` (`SECRET_FILES`). Raises SettingsError naming the variable of
        any value it cannot use, blank ones included, or a value given both ways."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            given = _given(field.name, explicit, env)
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
        """Raise SettingsError naming the variable of the first value flaggery cannot use."""
        _database_url(self.db_url)
        self._check_numbers()
        for name, allowed in (
            ("log_level", LOG_LEVELS),
            ("log_format", LOG_FORMATS),
            ("guard_action", GUARD_ACTIONS),
        ):
            if getattr(self, name) not in allowed:
                raise SettingsError(
                    f"FLAGGERY_{name.upper()} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}."
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
        for origin in self.cors_origin_list:
            _check_origin(origin)
        self._check_credentials()

    def _check_numbers(self) -> None:
        for name, (low, high) in INTEGER_RANGES.items():
            value = getattr(self, name)
            if value is not None:
                _require_range(name, value, low, high)
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

    def _check_credentials(self) -> None:
        if self.session_secret is not None and len(self.session_secret) < MIN_SESSION_SECRET:
            raise SettingsError(
                f"FLAGGERY_SESSION_SECRET must be at least {MIN_SESSION_SECRET} characters: "
                "a long random secret, such as the output of `openssl rand -hex 32`."
            )
        if not self.subject_attribute or self.subject_attribute == "targetingKey":
            raise SettingsError(
                "FLAGGERY_SUBJECT_ATTRIBUTE must name a context attribute other than "
                f"targetingKey, such as subject or tenantId; got {self.subject_attribute!r}."
            )
        if self.client_tokens is not None and not self.client_token_list:
            raise SettingsError("FLAGGERY_CLIENT_TOKENS lists no token: unset it or give one.")
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
        FLAGGERY_TOKENS, then the entries of FLAGGERY_TOKENS_FILE, as read and parsed once
        when these settings were built (`validate`). Empty: no route needs a token."""
        return self._named_tokens

    @functools.cached_property
    def _named_tokens(self) -> tuple[NamedToken, ...]:
        """Read and parsed on first use, which is construction: every guard, the dashboard and
        the client role then share them. Raises SettingsError for a malformed entry, a blank
        secret, a duplicate, or a file that cannot be read."""
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


SECRETS = tuple(field.name for field in dataclasses.fields(Settings) if field.metadata["secret"])
"""Settings that repr() hides and nothing logs."""
SECRET_FILES = ("db_url", *(name for name in SECRETS if name != "tokens"))
"""Settings that may be read from the file ``FLAGGERY_<NAME>_FILE`` names (a mounted secret);
FLAGGERY_TOKENS has its own setting for that, FLAGGERY_TOKENS_FILE."""


def _given(name: str, explicit: dict[str, Any], env: Mapping[str, str]) -> Any:
    """The value of setting `name` as given, before parsing: explicitly (``name`` or
    ``name_file``), else in the environment (``FLAGGERY_NAME`` or ``FLAGGERY_NAME_FILE``),
    else None. A file's content is read here, once, and stripped of surrounding whitespace
    (a mounted secret usually ends with a newline)."""
    variable = f"FLAGGERY_{name.upper()}"
    file_variable = f"{variable}_FILE"
    has_file = name in SECRET_FILES
    sources = [
        (explicit.pop(name, None), explicit.pop(f"{name}_file", None) if has_file else None),
        (env.get(variable), env.get(file_variable) if has_file else None),
    ]
    for value, path in sources:
        if value is not None and path is not None:
            raise SettingsError(f"{variable} and {file_variable} are both set: give one.")
        if path is not None:
            return _read_secret_file(file_variable, path)
        if value is not None:
            return value
    return None


def _read_secret_file(variable: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{variable} cannot be read: {error}") from None
    if not text:
        raise SettingsError(
            f"{variable} ({path}) is empty: a secret that failed to mount? Unset the variable "
            "to use the default, or put the value in the file."
        )
    return text


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
    """Refuse a reader, admin or guard secret that could be guessed: the server is reachable from
    other machines. Client tokens are exempt: they ship inside apps, where anyone can read
    them, and grant only flags."""
    for position, token in enumerate(tokens, start=1):
        if token.role is not Role.CLIENT and not strong_secret(token.secret):
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
