"""Evaluator.from_upstream (issue 11, items 6 and 9): an in-process replica that follows a real
flaggery server over HTTP, with no database: it loads the snapshot, patches every write from
the stream, keeps serving (stale) while the server is down, and resyncs when it is back."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from flaggery.errors import (
    DatabaseUnavailable,
    SubjectNotFound,
    UpstreamRefused,
    UpstreamUnavailable,
)
from flaggery.live.evaluator import Evaluator
from tests.http.processes import flaggery_process, free_port
from tests.live.backups import restore_backup, take_backup

TOKENS = "ops:admin:admin-secret edge:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}


def _seed(client: httpx.Client) -> int:
    client.put("/v1/buckets", params={"amount": 2}).raise_for_status()
    client.post("/v1/subjects/1", params={"weight": 1}).raise_for_status()
    client.post("/v1/features/f").raise_for_status()
    response = client.post("/v1/features/f/variants/A", params={"make_default": "true"})
    response.raise_for_status()
    return int(response.headers["x-flaggery-revision"])


async def test_follow_an_admin_server_through_an_outage(db_url: str, tmp_path: Path) -> None:
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    env = {"FLAGGERY_TOKENS": TOKENS}
    async with contextlib.AsyncExitStack() as stack:
        server = stack.enter_context(flaggery_process(args, tmp_path, env))
        server.client.headers.update(ADMIN)
        revision = await asyncio.to_thread(_seed, server.client)
        edge = Evaluator.from_upstream(str(server.client.base_url), token="reader-secret")
        await stack.enter_async_context(edge)
        assert edge.revision == revision and edge.variants(1) == {"f": "A"}
        write = server.client.post("/v1/subjects/2", params={"weight": 1})
        await edge.wait_for_revision(int(write.headers["x-flaggery-revision"]), 5)
        assert edge.variants(2) == {"f": "A"}
        with pytest.raises(SubjectNotFound):
            edge.variants(3)

        server.process.terminate()  # the admin goes away: the edge keeps serving, stale
        server.process.wait(15)
        await _until(lambda: edge.stale)
        assert edge.variants(2) == {"f": "A"}

        # Back on the same port: the edge resumes after its revision and sees new writes.
        with flaggery_process(args, tmp_path, env, port=server.port) as again:
            again.client.headers.update(ADMIN)
            write = again.client.post("/v1/subjects/3", params={"weight": 1})
            await edge.wait_for_revision(int(write.headers["x-flaggery-revision"]), 10)
            assert edge.variants(3) == {"f": "A"}
            await _until(lambda: not edge.stale)


async def test_a_wrong_token_or_no_server_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(UpstreamUnavailable, match="upstream") as unreachable:
        await Evaluator.from_upstream(f"http://127.0.0.1:{free_port()}").start()
    assert not isinstance(unreachable.value, UpstreamRefused)
    assert isinstance(unreachable.value, DatabaseUnavailable)  # outage handling catches it
    env = {"FLAGGERY_TOKENS": TOKENS}
    with flaggery_process(["--admin"], tmp_path, env) as server:
        url = str(server.client.base_url)
        for token, problem in [("wrong", "401: the token is not one"), (None, "no token")]:
            evaluator = Evaluator.from_upstream(url, token=token)
            with pytest.raises(UpstreamRefused, match=problem):
                await evaluator.start()
            await evaluator.stop()


async def _until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.mark.slow(seconds=15)
async def test_a_restored_backup_reloads_the_edge(db_url: str, tmp_path: Path) -> None:
    """Backup at a revision, two writes, restore: the server reloads, its stream says reload,
    and the edge serves the restored state, then the writes made after it."""
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    with flaggery_process(args, tmp_path) as server:
        await asyncio.to_thread(_seed, server.client)
        async with Evaluator.from_upstream(str(server.client.base_url)) as edge:
            await take_backup(db_url, tmp_path / "backup")
            server.client.post("/v1/features/f/variants/B").raise_for_status()
            write = server.client.put("/v1/features/f/default_variant/B")
            await edge.wait_for_revision(int(write.headers["x-flaggery-revision"]), 5)
            assert edge.variants(1) == {"f": "B"}
            full_loads = edge.counts.full

            await restore_backup(tmp_path / "backup", db_url)
            await _until(lambda: edge.counts.full > full_loads, 30)
            await _until(lambda: edge.variants(1) == {"f": "A"}, 30)
            server.client.post("/v1/features/g").raise_for_status()
            await _until(lambda: "g" in edge.snapshot.to_state().features, 30)
