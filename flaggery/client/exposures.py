"""ExposureSender: a client's exposures, sent to POST /v1/exposures in batches.

`record` only appends to a buffer (no I/O). A batch goes out when `BATCH_SIZE` exposures wait,
every ``interval`` seconds from the background task (`run`), and at `flush`/close. On a 5xx or
an unreachable server the batch is kept and retried later, up to `MAX_BUFFERED` exposures (the
oldest are dropped beyond, and counted in `dropped`); a 4xx (a test or group the server does
not know: the batch is refused whole) drops the batch, logged with the server's message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import httpx

from flaggery.clock import utc_now

__all__ = ["BATCH_SIZE", "MAX_BUFFERED", "ExposureSender"]

log = logging.getLogger(__name__)

BATCH_SIZE = 100
"""Exposures per POST (the server takes up to 1,000)."""
MAX_BUFFERED = 10_000
"""Exposures kept while the server cannot take them; older ones are dropped beyond."""


class ExposureSender:
    """Batches exposures for one server (``http``: an httpx client with its base URL and
    token)."""

    def __init__(self, http: httpx.AsyncClient, interval: float = 1.0) -> None:
        self._http = http
        self._interval = interval
        self._buffer: list[dict[str, str]] = []
        self._sending = asyncio.Lock()
        self.dropped = 0
        """Exposures dropped: refused by the server, or beyond MAX_BUFFERED."""

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, key: str, test: str, group: str, when: datetime | None = None) -> None:
        """One exposure: targeting key `key` was shown `group` of A/B `test` at `when` (now if
        None; aware). No I/O: it is sent with the next batch."""
        moment = utc_now() if when is None else when
        self._buffer.append(
            {"context_id": key, "test": test, "group": group, "timestamp": moment.isoformat()}
        )
        excess = len(self._buffer) - MAX_BUFFERED
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess

    async def flush(self) -> None:
        """Send everything buffered, in batches; what the server cannot take now stays."""
        async with self._sending:
            while self._buffer:
                batch = self._buffer[:BATCH_SIZE]
                if not await self._send(batch):
                    return
                del self._buffer[: len(batch)]

    async def _send(self, batch: list[dict[str, str]]) -> bool:
        """True when the batch is done with (accepted, or refused for good)."""
        try:
            response = await self._http.post("/v1/exposures", json={"exposures": batch})
        except httpx.HTTPError as error:
            log.warning("Exposures not sent (%s); retrying later", error)
            return False
        if response.status_code >= 500:
            log.warning("Exposures not taken (HTTP %d); retrying later", response.status_code)
            return False
        if response.status_code >= 400:
            self.dropped += len(batch)
            log.error("Exposures refused (HTTP %d): %s", response.status_code, response.text)
        return True

    async def run(self) -> None:
        """Send every interval (and whenever a full batch waits) until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
