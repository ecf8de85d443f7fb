"""flaggery.client against a real server (issue 11, item 7): answers come from the cache until
the stream says a revision changed them; with the server down a cached answer is served and
marked stale, an uncached one is ServerUnavailable; 4xx are the server's typed errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from flaggery.client import AsyncFlaggeryClient, FlaggeryClient, ServerUnavailable
from flaggery.errors import InvalidInput, InvalidTargetingKey, SubjectNotFound
from tests.http.processes import flaggery_process

TOKENS = "ops:admin:admin-secret app:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}


def _seed(client: httpx.Client) -> None:
    client.put("/v1/buckets", params={"amount": 1}).raise_for_status()
    for subject in (1, 2):
        client.post(f"/v1/subjects/{subject}", params={"weight": 1}).raise_for_status()
    client.post("/v1/features/f").raise_for_status()
    client.post("/v1/features/f/variants/A", params={"make_default": "true"}).raise_for_status()
    client.post("/v1/features/f/variants/B").raise_for_status()


async def _until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_cache_stream_invalidation_and_outage(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], tmp_path, {"FLAGGERY_TOKENS": TOKENS}) as server:
        server.client.headers.update(ADMIN)
        await asyncio.to_thread(_seed, server.client)
        url = str(server.client.base_url)
        async with AsyncFlaggeryClient(url, token="reader-secret", cache_ttl=60) as client:
            assert await client.variants(1) == {"f": "A"}
            with pytest.raises(SubjectNotFound, match="3"):
                await client.variants(3)

            server.client.put("/v1/features/f/default_variant/B").raise_for_status()

            async def switched() -> bool:
                return await client.variant(1, "f") == "B"

            await _until(switched)  # the stream dropped the cached "A"
            assert client.revision is not None and client.revision >= 7

            server.process.terminate()
            server.process.wait(15)
            assert (await client.flags(1)).flags == {"f": "B"}  # fresh: no request
            with pytest.raises(ServerUnavailable, match="subject 2"):
                await client.flags(2)


async def test_a_server_error_serves_the_cached_answer_and_says_so(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], tmp_path) as server:
        await asyncio.to_thread(_seed, server.client)
        url = str(server.client.base_url)
        async with AsyncFlaggeryClient(url, follow=False, cache_ttl=0.2) as client:
            assert (await client.flags(1)).stale is False
            server.process.terminate()
            server.process.wait(15)
            await asyncio.sleep(0.3)  # the fresh answer expires; the last known one stays
            answer = await client.flags(1)
            assert (answer.flags, answer.stale) == ({"f": "A"}, True)
            assert answer.reason is not None and "unreachable" in answer.reason
            with pytest.raises(ServerUnavailable, match="unreachable"):
                await client.flags(2)


async def test_any_key_is_answered_and_a_new_subject_drops_its_key(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], tmp_path, {"FLAGGERY_TOKENS": TOKENS}) as server:
        server.client.headers.update(ADMIN)
        await asyncio.to_thread(_seed, server.client)
        server.client.post("/v1/groups/g").raise_for_status()
        server.client.post("/v1/groups/g/overrides/f", params={"variant": "B"}).raise_for_status()
        url = str(server.client.base_url)
        async with AsyncFlaggeryClient(url, token="reader-secret", cache_ttl=60) as client:
            for key in ("ana@example.com", "a/b c?#%", "7"):
                assert (await client.key_flags(key)).flags == {"f": "A"}  # one bucket: all alike
            with pytest.raises(InvalidTargetingKey):
                await client.key_flags("")
            server.client.post("/v1/subjects/7", params={"weight": 1}).raise_for_status()
            server.client.post("/v1/groups/g/subjects/7").raise_for_status()

            async def subject_7() -> bool:
                return (await client.key_flags("7")).flags == {"f": "B"}

            await _until(subject_7)  # "7" is subject 7 now, in group g
            assert (await client.key_flags("ana@example.com")).flags == {"f": "A"}


def test_the_sync_client(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], tmp_path) as server:
        _seed(server.client)
        with FlaggeryClient(str(server.client.base_url)) as client:
            assert client.variants(2) == {"f": "A"}
            assert client.variant(2, "g") is None
            with pytest.raises(SubjectNotFound):
                client.flags(9)
            assert client.key_flags("9").flags == {"f": "A"}  # hashed: not an error


async def test_a_key_with_a_context_is_answered_by_the_rule_groups_and_cached_apart(
    tmp_path: Path,
) -> None:
    """Issue 20: the client sends the evaluation context (``context.NAME`` parameters), caches
    per (key, context), and the stream drops those answers when a rule or a subject changes."""
    with flaggery_process(["--admin"], tmp_path, {"FLAGGERY_TOKENS": TOKENS}) as server:
        server.client.headers.update(ADMIN)
        await asyncio.to_thread(_seed, server.client)
        germany = {"contextName": "country", "operator": "IN", "values": ["DE"]}
        server.client.post("/v1/groups/dach").raise_for_status()
        server.client.put("/v1/groups/dach/rule", json={"rule": [[germany]]}).raise_for_status()
        overrides = "/v1/groups/dach/overrides/f"
        server.client.post(overrides, params={"variant": "B"}).raise_for_status()
        url = str(server.client.base_url)
        async with AsyncFlaggeryClient(url, token="reader-secret", cache_ttl=60) as client:
            assert (await client.key_flags("ana", {"country": "DE"})).flags == {"f": "B"}
            assert (await client.key_flags("ana", {"country": "FR"})).flags == {"f": "A"}
            assert (await client.key_flags("ana")).flags == {"f": "A"}
            assert (await client.key_flags("1", {"country": "DE", "n": 2})).flags == {"f": "B"}
            with pytest.raises(InvalidInput, match="a context value is a str"):
                await client.key_flags("ana", {"country": ["DE"]})  # type: ignore[dict-item]
            de = {"values": ["FR"], "contextName": "country", "operator": "IN"}
            server.client.put("/v1/groups/dach/rule", json={"rule": [[de]]}).raise_for_status()

            async def moved() -> bool:
                answers = [await client.key_flags("ana", {"country": c}) for c in ("DE", "FR")]
                return [a.flags["f"] for a in answers] == ["A", "B"]

            await _until(moved)  # the rule change dropped the answers cached per context
            server.process.terminate()
            server.process.wait(15)
            assert (await client.key_flags("ana", {"country": "FR"})).flags == {"f": "B"}
            with pytest.raises(ServerUnavailable, match="'bob' in its context"):
                await client.key_flags("bob", {"country": "FR"})
