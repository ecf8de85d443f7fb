"""FlaggeryProvider's events when the feed loses the database and gets it back: STALE, then
READY, through the SDK's handlers. Runs on the private cluster the outage tests stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from flaggery.live.evaluator import Evaluator
from flaggery.openfeature import FlaggeryProvider
from flaggery.store.repository import AsyncFlaggery
from tests.live.conftest import cluster, cluster_db_url
from tests.live.helpers import eventually, seed
from tests.pgcluster import PrivateCluster

__all__ = ["cluster", "cluster_db_url"]  # the fixtures, shared with tests/live

pytestmark = pytest.mark.slow


async def test_stale_while_the_database_is_down_then_ready(
    cluster: PrivateCluster, cluster_db_url: str
) -> None:
    async with AsyncFlaggery.from_db_url(cluster_db_url) as store:
        await seed(store)
    async with Evaluator.from_db_url(cluster_db_url) as evaluator:
        api.set_provider_and_wait(FlaggeryProvider(evaluator), "outage")
        client = api.get_client("outage")
        events: list[tuple[ProviderEvent, EventDetails]] = []

        def recorder(kind: ProviderEvent) -> Callable[[EventDetails], None]:
            return lambda details: events.append((kind, details))

        for kind in (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY):
            client.add_handler(kind, recorder(kind))
        events.clear()  # add_handler replays the current status (READY)
        try:
            await asyncio.to_thread(cluster.stop)
            await eventually(lambda: any(k == ProviderEvent.PROVIDER_STALE for k, _ in events))
            assert client.get_provider_status() == ProviderStatus.STALE
            # Still answering from the last snapshot.
            assert client.get_string_value("checkout", "", EvaluationContext("3")) == "old"
            await asyncio.to_thread(cluster.start)
            await eventually(lambda: events[-1][0] == ProviderEvent.PROVIDER_READY, timeout=15)
            assert client.get_provider_status() == ProviderStatus.READY
        finally:
            api.clear_providers()
