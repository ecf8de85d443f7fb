"""Read-your-writes across processes (issue 11, item 2b): every write answers with its revision
in X-Flaggery-Revision; any read may name a minimum revision in X-Flaggery-Min-Revision and is
answered from a snapshot at least that new, or 503 RevisionNotReached after a bounded wait."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok
from tests.http.processes import flaggery_server

MIN = "X-Flaggery-Min-Revision"


async def test_writes_carry_their_revision(make_client: MakeClient) -> None:
    client = await make_client()
    first = await client.post("/v1/features/f")
    second = await client.post("/v1/features/f/variants/A", params={"make_default": "true"})
    assert (first.headers["x-flaggery-revision"], second.headers["x-flaggery-revision"]) == (
        "1",
        "2",
    )
    refused = await client.post("/v1/features/f")  # wrote nothing: no revision to name
    assert refused.status_code == 400 and "x-flaggery-revision" not in refused.headers


async def test_concurrent_writes_each_answer_their_own_revision_and_are_read_back(
    make_client: MakeClient,
) -> None:
    """Writes that share a batch transaction (group commit) still answer each with its own
    revision, and the process that made them serves each one as soon as it answers."""
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 3}))
    ok(await client.post("/v1/groups/g"), 201)

    async def write_and_read(subject: int) -> tuple[int, int]:
        added = await client.post(f"/v1/subjects/{subject}", params={"weight": subject})
        assert added.status_code == 201, added.text
        joined = await client.post(f"/v1/groups/g/subjects/{subject}")
        ok(joined)
        seen = ok(await client.get(f"/v1/subjects/{subject}"))  # no minimum revision named
        assert (seen["weight"], seen["groups"]) == (subject, ["g"])
        return int(added.headers["x-flaggery-revision"]), int(joined.headers["x-flaggery-revision"])

    revisions = await asyncio.gather(*(write_and_read(s) for s in range(1, 21)))
    flat = [r for pair in revisions for r in pair]
    assert sorted(flat) == list(range(3, 43))  # each its own, none lost, none shared
    changes = ok(await client.get("/v1/changes", params={"after": 2}))["changes"]
    by_revision = {c["revision"]: c for c in changes}
    for subject, (added, joined) in enumerate(revisions, start=1):
        assert by_revision[added]["operation"] == "add_subject"
        assert by_revision[joined]["operation"] == "add_subject_to_group"
        assert by_revision[joined]["facts"][0]["id"] == subject


async def test_reads_wait_for_a_revision_then_give_up(make_client: MakeClient) -> None:
    client = await make_client(min_revision_wait=0.2)
    ok(await client.put("/v1/buckets", params={"amount": 1}))
    ok(await client.post("/v1/subjects/1", params={"weight": 1}), 201)
    for path in ("/v1/subjects/1/flags", "/v1/subjects/1", "/v1/features", "/v1/changes"):
        ok(await client.get(path, headers={MIN: "2"}))
        started = time.monotonic()
        message = fails(await client.get(path, headers={MIN: "3"}), 503, "RevisionNotReached")
        assert time.monotonic() - started >= 0.2
        assert "at revision 2 and did not reach revision 3 within 0.2 s" in message


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "9" * 19, "1" * 20, "", "1e3"])
async def test_a_malformed_minimum_is_422(make_client: MakeClient, value: str) -> None:
    client = await make_client()
    response = await client.get("/v1/subjects/1/flags", headers={MIN: value})
    fails(response, 422, "RequestValidationError")


@pytest.mark.slow
def test_two_workers_read_their_writes(clean_postgres: str, tmp_path: Path) -> None:
    """With --workers 2, each read after a write lands on either worker; naming the write's
    revision makes every one of them see it."""
    args = ["--admin", "--db-url", clean_postgres, "--workers", "2"]
    with flaggery_server(args, tmp_path) as client:
        client.put("/v1/buckets", params={"amount": 1}).raise_for_status()
        for subject in range(1, 26):
            write = client.post(f"/v1/subjects/{subject}", params={"weight": 1})
            assert write.status_code == 201, write.text
            revision = write.headers["x-flaggery-revision"]
            read = client.get(f"/v1/subjects/{subject}/flags", headers={MIN: revision})
            assert read.status_code == 200, read.text
