"""The PostgreSQL feed: LISTEN on a dedicated connection, refresh on NOTIFY.

The connection is never taken from a pool (returning it would run UNLISTEN). We LISTEN before
the full load, so a write that commits during the load is announced rather than lost. The
payload (the revision) is only a wake-up: notifications arriving while a refresh runs are
coalesced into one more refresh, which reads the change log on this same connection. After a
lost connection, notifications sent meanwhile are gone, so every reconnect ends in a full
reload. A periodic check is the backstop for a connection that is silently half-open.

A hot standby refuses LISTEN ("cannot execute LISTEN during recovery"), and NOTIFY is not
replicated anyway. The feed asks ``pg_is_in_recovery()`` on each (re)connection; on a standby
it does not LISTEN, and the periodic check becomes the mechanism, every STANDBY_POLL_SECONDS,
as the SQLite polling feed does. Each check asks again: when the standby is promoted, the feed
reconnects, LISTENs and reloads, like after any lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

import asyncpg

from flaggery.live.backoff import RECONNECT
from flaggery.live.failure_log import FailureLog
from flaggery.live.tasks import cancel_and_wait
from flaggery.store.database import CONNECT_TIMEOUT_SECONDS, NOTIFY_CHANNEL
from flaggery.store.log_tail import read_tail_asyncpg
from flaggery.store.replica import Replica

__all__ = ["PostgresFeed"]

log = logging.getLogger(__name__)

STANDBY_POLL_SECONDS = 0.25
_IN_RECOVERY = "SELECT pg_is_in_recovery()"


class PostgresFeed:
    def __init__(self, dsn: str, replica: Replica, check_interval: float = 15.0) -> None:
        self._dsn = dsn
        self._replica = replica
        self._check_interval = check_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.standby = False
        """Whether the server is a hot standby (then the revision is polled)."""

    async def start(self) -> None:
        connection = await self._listen()
        try:
            await self._replica.reload()
        except BaseException:
            await _close(connection)
            raise
        self._task = asyncio.create_task(self._run(connection), name="flaggery-postgres-feed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _listen(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            standby = bool(await connection.fetchval(_IN_RECOVERY))
            # A notification and a lost connection both mean the same: go and look.
            connection.add_termination_listener(self._wake_up)
            if not standby:
                await connection.add_listener(NOTIFY_CHANNEL, self._wake_up)
        except BaseException:
            await _close(connection)
            raise
        if standby and not self.standby:
            log.info("The database is a hot standby: polling its revision every %s s "
                     "(standbys deliver no NOTIFY)", STANDBY_POLL_SECONDS)  # fmt: skip
        self.standby = standby
        return connection

    def _wake_up(self, *_: Any) -> None:
        self._wake.set()

    async def _run(self, connection: asyncpg.Connection) -> None:
        while True:
            try:
                await self._follow(connection)
            except Exception:
                # Whatever broke, this task must live on: it is the only way back to current.
                log.warning("Lost the LISTEN connection", exc_info=True)
            finally:
                await _close(connection)
            self._replica.mark_disconnected()
            connection = await self._reconnect()

    async def _follow(self, connection: asyncpg.Connection) -> None:
        """Refresh on every wake-up until the connection is lost."""
        while True:
            interval = STANDBY_POLL_SECONDS if self.standby else self._check_interval
            try:
                # asyncio.timeout, not wait_for: see flaggery.live.tasks (CPython 86296).
                async with asyncio.timeout(interval):
                    await self._wake.wait()
                woken = True
            except TimeoutError:
                woken = False
            self._wake.clear()
            if connection.is_closed():
                return
            if not woken:
                # Raises on a half-open connection, which then gets replaced.
                in_recovery = await connection.fetchval(
                    _IN_RECOVERY, timeout=CONNECT_TIMEOUT_SECONDS
                )
                if self.standby and not in_recovery:
                    log.info("The standby was promoted: reconnecting to LISTEN")
                    return
            # The change log is read on this connection too: no pool checkout, no SQLAlchemy.
            await self._replica.refresh(functools.partial(read_tail_asyncpg, connection))

    async def _reconnect(self) -> asyncpg.Connection:
        """LISTEN again and reload everything; retry with jittered backoff until it works."""
        delays = RECONNECT.delays()
        failures = FailureLog(log)  # an outage would log a line per attempt (every 2 s)
        while True:
            await asyncio.sleep(next(delays))
            self._replica.counts.reconnects += 1
            try:
                connection = await self._listen()
            except Exception as error:
                failures.failed(str(error), "Reconnecting the LISTEN connection failed: %s", error)
                continue
            try:
                await self._replica.reload()
            except BaseException as error:
                # Closed on cancellation too (stop() during a reload), or it leaks.
                await _close(connection)
                if not isinstance(error, Exception):
                    raise
                failures.failed(str(error), "Full reload after reconnect failed: %s", error)
                continue
            revision = self._replica.revision
            log.info(
                "LISTEN connection restored at revision %s", revision, extra={"revision": revision}
            )
            return connection


async def _close(connection: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await connection.close()
