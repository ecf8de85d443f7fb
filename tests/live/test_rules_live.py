"""Rules in live snapshots: an Evaluator applies rule and audience writes from the change
log, reads its clock for currentTime, and an edge evaluates rules from its upstream's
snapshot. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import httpx

from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.http.processes import flaggery_process

DACH = [[{"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}]]


async def test_rule_writes_reach_a_live_evaluator(db_url: str, clock: FakeClock) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await store.increase_buckets(2)
        await store.add_subject(1)
        await store.add_feature("f")
        await store.add_variant("A", "f", make_default=True)
        await store.add_variant("B", "f")
        await store.add_group("dach")
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            await store.set_group_rule("dach", DACH)
            await store.add_group_override("dach", "f", "B")
            await ev.wait_for_revision(await store.revision(), 5)
            assert ev.evaluate("1", {"country": "AT"}).flags == {"f": "B"}
            assert ev.evaluate("1").flags == {"f": "A"}  # no context: explicit groups only
            assert ev.explain_key("1", {"country": "DE"}).rule_groups == {"dach": 0}

            await store.rm_group_override("dach", "f")
            await store.add_rollout("B", "f")
            await store.set_rollout("f", proportion=1.0, audience="dach")
            await store.set_group_rule("dach", [[{**DACH[0][0], "values": ["CH"]}]])
            await ev.wait_for_revision(await store.revision(), 5)
            assert ev.evaluate("visitor", {"country": "CH"}).flags == {"f": "B"}
            assert ev.evaluate("visitor", {"country": "DE"}).flags == {"f": "A"}

            # currentTime is the Evaluator's clock when the context gives none.
            after = clock.now + timedelta(days=1)
            date_rule = {"contextName": "currentTime", "operator": "DATE_AFTER"}
            await store.set_group_rule("dach", [[{**date_rule, "value": after.isoformat()}]])
            await ev.wait_for_revision(await store.revision(), 5)
            assert ev.evaluate("visitor", {"country": "DE"}).flags == {"f": "A"}
            clock.advance(days=2)
            assert ev.evaluate("visitor", {"country": "DE"}).flags == {"f": "B"}


async def test_an_edge_evaluates_rules_from_its_upstreams_snapshot(
    db_url: str, tmp_path: Path
) -> None:
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    async with contextlib.AsyncExitStack() as stack:
        server = stack.enter_context(flaggery_process(args, tmp_path))
        revision = await asyncio.to_thread(_seed, server.client)
        edge = Evaluator.from_upstream(str(server.client.base_url))
        await stack.enter_async_context(edge)
        await edge.wait_for_revision(revision, 10)
        assert edge.evaluate("anyone", {"country": "AT"}).flags == {"f": "B"}
        assert edge.evaluate("anyone", {"country": "FR"}).flags == {"f": "A"}


def _seed(client: httpx.Client) -> int:
    for method, path, params, body in [
        ("PUT", "/v1/buckets", {"amount": 2}, None),
        ("POST", "/v1/features/f", None, None),
        ("POST", "/v1/features/f/variants/A", {"make_default": "true"}, None),
        ("POST", "/v1/features/f/variants/B", None, None),
        ("POST", "/v1/groups/dach", None, None),
        ("PUT", "/v1/groups/dach/rule", None, {"rule": DACH}),
        ("POST", "/v1/groups/dach/overrides/f", {"variant": "B"}, None),
    ]:
        response = client.request(method, path, params=params, json=body)
        response.raise_for_status()
    return int(response.headers["x-flaggery-revision"])
