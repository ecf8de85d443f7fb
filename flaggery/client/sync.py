"""FlaggeryClient: the blocking twin of AsyncFlaggeryClient, for scripts. It runs the async
client (and its stream follower) on a private event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from flaggery.client.remote import AsyncFlaggeryClient, ContextValue, FlagsAnswer

__all__ = ["FlaggeryClient"]

T = TypeVar("T")


class FlaggeryClient:
    """Same arguments, results, errors and cache as `AsyncFlaggeryClient`; blocks meanwhile.
    Close it (or use ``with``) to stop its thread."""

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="flaggery-client", daemon=True
        )
        self._thread.start()
        self._client = self._run(_open(url, options))

    def flags(self, subject_id: int) -> FlagsAnswer:
        return self._run(self._client.flags(subject_id))

    def key_flags(self, key: str, context: Mapping[str, ContextValue] | None = None) -> FlagsAnswer:
        return self._run(self._client.key_flags(key, context))

    def variants(self, subject_id: int) -> dict[str, str]:
        return self._run(self._client.variants(subject_id))

    def variant(self, subject_id: int, feature: str) -> str | None:
        return self._run(self._client.variant(subject_id, feature))

    def record_exposure(
        self, key: str, test: str, group: str, when: datetime | None = None
    ) -> None:
        self._loop.call_soon_threadsafe(self._client.record_exposure, key, test, group, when)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> FlaggeryClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


async def _open(url: str, options: dict[str, Any]) -> AsyncFlaggeryClient:
    client = AsyncFlaggeryClient(url, **options)  # on the private loop: its tasks live there
    await client.start()
    return client
