"""The ``flaggery`` command.

    flaggery [--host H] [--port P] [--workers N] [--admin] [--db-url URL] ...   serve
    flaggery db upgrade [--db-url URL]                                         migrate
    flaggery --version

A database that cannot be reached or refuses the connection is reported in one line that says
what to check, with exit status 1; bad settings exit with 2.

Every flag mirrors a ``FLAGGERY_*`` variable and wins over it: the flags are generated from
the `Settings` fields, in groups. Logging is `flaggery.log_format`'s. Serving runs uvicorn
(httptools with flaggery's read deadline, see ``flaggery.http.protocol``; uvloop; no access
log unless asked). This parent process validates the settings, migrates the database once if
asked, prepares the Prometheus multiprocess directory, then hands the final
settings to the workers through their environment; each worker builds its own app from it.

SIGTERM stops accepting connections, drains the requests in flight for at most
``DRAIN_SECONDS`` (then cancels the rest: a cancelled write rolls back), runs the lifespan
shutdown (the LISTEN connection and the pool are closed) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging.config
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flaggery import __version__
from flaggery.log_format import log_config
from flaggery.settings import SECRET_FILES, Settings, SettingsError

__all__ = ["main"]

APP_FACTORY = "flaggery.http.app:app_from_env"
# uvicorn's own default waits for every connection to finish, so one client that stalls
# mid-upload holds the shutdown forever. Five seconds is ample for flag reads and admin writes,
# and with the lifespan shutdown still fits in `docker stop`'s 10 s before its SIGKILL.
DRAIN_SECONDS = 5


class CommandFailed(Exception):
    """A failure the operator can fix; its message says what to check. Exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["db"]:
            return _db(args[1:])
        return _serve(args)
    except SettingsError as error:
        print(f"flaggery: {error}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        print(f"flaggery: {error}", file=sys.stderr)
        return 1


GROUPS = {
    "server": "the server process",
    "database": "the database",
    "access": "access: the admin API, tokens, the dashboard, browsers",
    "edge": "an edge: follow another flaggery server instead of a database",
    "serving": "serving",
    "webhooks": "webhooks out and guards (the admin server)",
}
"""Settings group -> the title of its section in ``flaggery --help``."""


def _serve_parser() -> argparse.ArgumentParser:
    """One flag per setting, generated from `Settings`' fields, plus ``--<name>-file`` for each
    secret (`SECRET_FILES`); each flag's help names its variable and default."""
    parser = argparse.ArgumentParser(
        prog="flaggery",
        description="Serve the flaggery REST API. Subcommand: 'flaggery db upgrade'.",
        epilog="Every option falls back to its FLAGGERY_* environment variable. Secrets on a "
        "command line are visible to other users: prefer the variable or its --*-file flag.",
    )
    parser.add_argument("--version", action="version", version=f"flaggery {__version__}")
    groups = {name: parser.add_argument_group(title) for name, title in GROUPS.items()}
    for field in dataclasses.fields(Settings):
        _add_setting_flags(groups[field.metadata["group"]].add_argument, field)
    return parser


def _add_setting_flags(add: Callable[..., object], field: dataclasses.Field[Any]) -> None:
    """``add``: the add_argument of the field's group."""
    variable = f"FLAGGERY_{field.name.upper()}"
    flag = field.metadata["flag"] or f"--{field.name.replace('_', '-')}"
    shown = field.metadata["default"] or _shown(field.default)
    default = f", default {shown}" if shown else ""
    help_text = f"{field.metadata['help']} ({variable}{default})"
    if field.type in ("bool", bool):
        add(flag, dest=field.name, action=argparse.BooleanOptionalAction, help=help_text)
    else:
        # Values stay text here: flags and variables go through one parser (Settings.from_env).
        add(flag, dest=field.name, metavar=field.name.upper(), help=help_text)
    if field.name in SECRET_FILES:
        add(
            f"{flag}-file",
            dest=f"{field.name}_file",
            metavar="PATH",
            help=f"read {flag} from this file ({variable}_FILE)",
        )


def _shown(default: object) -> str:
    if default is None:
        return ""
    return ("yes" if default else "no") if isinstance(default, bool) else str(default)


def _add_db_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-url", help="database URL (FLAGGERY_DB_URL, default sqlite:///flaggery.db)"
    )
    parser.add_argument("--db-url-file", help="read --db-url from this file (FLAGGERY_DB_URL_FILE)")


def _serve(argv: Sequence[str]) -> int:
    import uvicorn

    from flaggery.http.protocol_guard import protocol_factory
    from flaggery.http.startup import log_startup

    settings = Settings.from_env(**vars(_serve_parser().parse_args(argv)))
    settings.check_exposure()
    settings.check_startup()
    if settings.db_auto_upgrade and settings.upstream_url is None:
        _upgrade(settings.db_url)
    if settings.session_secret is None and not settings.requires_tokens:
        # An open server's dashboard signs its CSRF cookie with this: the same in every
        # worker, so a form served by one is accepted by another (new at each start).
        settings = dataclasses.replace(settings, session_secret=secrets.token_hex(32))
    # Workers must not migrate again: they inherit these settings with auto-upgrade off.
    # Secrets read from files reach them as values, so the file variables must not.
    for name in SECRET_FILES:
        os.environ.pop(f"FLAGGERY_{name.upper()}_FILE", None)
    os.environ.update(settings.to_env())
    os.environ["FLAGGERY_DB_AUTO_UPGRADE"] = "false"
    metrics_dir = _prepare_metrics_dir(settings)
    logging_config = log_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(logging_config)  # uvicorn applies it again: the same handlers
    log_startup(settings)
    signal.signal(signal.SIGTERM, _exit_after_drain)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            http=protocol_factory(settings.read_timeout),
            loop="uvloop",
            access_log=settings.access_log,
            log_level=settings.log_level,
            log_config=logging_config,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _exit_after_drain(signum: int, frame: object) -> None:
    """After its graceful shutdown, uvicorn raises the SIGTERM it caught again (for embedders):
    under the default disposition that would kill a single-worker server with -15 after a clean
    drain. Reaching this handler means the stop was asked for, so it is a clean exit."""
    raise SystemExit(0)


def _db(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="flaggery db", description="Database commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_db_url(commands.add_parser("upgrade", help="migrate the database to the latest schema"))
    args = parser.parse_args(argv)
    settings = Settings.from_env(db_url=args.db_url, db_url_file=args.db_url_file)
    before, after = _upgrade(settings.db_url)
    where = f"flaggery: database at {_safe_url(settings.db_url)}"
    if before == after:
        print(f"{where} is already at schema revision {after}; nothing to do.")
    else:
        print(f"{where} migrated from schema revision {before or 'none (empty)'} to {after}.")
    return 0


def _upgrade(db_url: str) -> tuple[str | None, str | None]:
    """Migrate; the schema revisions before and after. Raises `CommandFailed` naming the
    database and what to check."""
    from sqlalchemy.exc import DBAPIError

    from flaggery.errors import DatabaseUnavailable
    from flaggery.store.migrations import upgrade
    from flaggery.store.repository import AsyncFlaggery

    async def run() -> tuple[str | None, str | None]:
        try:
            async with AsyncFlaggery.from_db_url(db_url) as store:
                return await upgrade(store.database.engine)
        finally:
            await _let_sqlite_threads_finish()

    where = f"cannot migrate the database at {_safe_url(db_url)}"
    try:
        return asyncio.run(run())
    except DatabaseUnavailable as error:
        if not _login_refused(error):
            raise CommandFailed(
                f"{where}: unreachable ({_reason(error)}). {_reach_hint(db_url)}"
            ) from None
        raise CommandFailed(f"{where}: {_reason(error)}. {_LOGIN_HINT}") from None
    except DBAPIError as error:
        raise CommandFailed(f"{where}: {_reason(error)}. {_LOGIN_HINT}") from None


_LOGIN_HINT = "Check the user, password and database name in --db-url (FLAGGERY_DB_URL)."


def _login_refused(error: BaseException) -> bool:
    """Whether the server answered but refused this login (unknown or NOLOGIN role, wrong
    password, no such database): the URL's credentials are at fault, not the network."""
    import asyncpg

    refusals = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)
    seen: BaseException | None = error
    for _ in range(8):  # the chain is short: ours, SQLAlchemy's, the driver's
        if seen is None:
            return False
        if isinstance(seen, refusals):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


async def _let_sqlite_threads_finish() -> None:
    """aiosqlite stops the worker thread of a connection that failed to open without waiting
    for it; if `asyncio.run` closes the loop first, the thread dies with a traceback on stderr
    after our one-line message. Give such threads a moment (at most 1 s) to finish."""
    workers = [t for t in threading.enumerate() if t.name.endswith("_connection_worker_thread)")]
    for worker in workers:
        await asyncio.to_thread(worker.join, 1.0)


def _reason(error: BaseException) -> str:
    """The driver's own words, one line: SQLAlchemy's wrappers add a type and a help link."""
    cause = error.__cause__ or error
    return str(getattr(cause, "orig", None) or cause).splitlines()[0]


def _reach_hint(db_url: str) -> str:
    from flaggery.store.urls import async_url, is_sqlite

    if is_sqlite(async_url(db_url)):
        return "Check that the file's directory exists and is writable."
    return (
        "Check that the server is running and that --db-url (FLAGGERY_DB_URL) names the "
        "right host and port."
    )


def _prepare_metrics_dir(settings: Settings) -> Path | None:
    """With several workers, Prometheus needs a directory they all write their samples to.
    Created here, before any worker starts, and removed at exit; an existing
    PROMETHEUS_MULTIPROC_DIR is used (emptied of stale samples) and kept."""
    if not settings.enable_prometheus or settings.workers == 1:
        return None
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        for stale in Path(existing).glob("*.db"):
            stale.unlink()
        return None
    path = Path(tempfile.mkdtemp(prefix="flaggery-prometheus-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
