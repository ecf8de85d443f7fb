"""Two real admin servers on one PostgreSQL database race for the same due steps: each step
is applied exactly once (one apply_schedule row, one revision), whichever server wins it."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.schedules import ScheduledStep
from tests.http.processes import flaggery_process, wait_for

SCHEDULES = 20
LEAD_SECONDS = 3.0
"""The steps fall due this long after they are created: both servers are up and polling by
then, so both see every step due at their next look and race for each."""


def _pending(client: httpx.Client) -> int:
    schedules = client.get("/v1/schedules").json()["schedules"]
    return sum(step["status"] == "pending" for s in schedules for step in s["steps"])


def _applied_rows(client: httpx.Client) -> list[dict[str, object]]:
    page = client.get("/v1/changes", params={"limit": 1000}).json()
    return [c for c in page["changes"] if c["operation"] == "apply_schedule"]


async def _schedule_all(db_url: str, due: datetime) -> None:
    async with AsyncFlaggery.from_db_url(db_url, actor="race-test") as store:
        steps = [
            [
                ScheduledStep(
                    due, "set_rollout", {"feature": "f", "variant": "on", "proportion": n / 100}
                )
            ]
            for n in range(SCHEDULES)
        ]
        await asyncio.gather(*(store.create_schedule(f"s{n}", s) for n, s in enumerate(steps)))


@pytest.mark.slow
def test_two_admin_servers_apply_each_due_step_once(clean_postgres: str, tmp_path: Path) -> None:
    args = ["--admin", "--db-url", clean_postgres, "--log-level", "debug"]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        # Started side by side: a server takes seconds to start on a loaded machine.
        starting = [flaggery_process(args, tmp_path) for _ in range(2)]
        servers = list(pool.map(stack.enter_context, starting))
        first, second = (server.client for server in servers)
        first.put("/v1/buckets", params={"amount": 10}).raise_for_status()
        first.post("/v1/features/f").raise_for_status()
        first.post("/v1/features/f/variants/on").raise_for_status()
        # Created together (one group commit) from this process: over REST one by one, a
        # loaded machine took longer than the lead and the first steps fell due meanwhile.
        due = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
        asyncio.run(_schedule_all(clean_postgres, due))
        assert _pending(first) == SCHEDULES
        wait_for(lambda: _pending(first) == 0, timeout=LEAD_SECONDS + 30)
        rows = _applied_rows(first)
        assert sorted(str(row["actor"]) for row in rows) == sorted(
            f"schedule:s{n}" for n in range(SCHEDULES)
        )
        revisions = [int(str(row["revision"])) for row in rows]
        assert len(set(revisions)) == SCHEDULES
        applied_revisions = set()
        for number in range(SCHEDULES):
            steps = second.get(f"/v1/schedules/s{number}").json()["steps"]
            assert [s["status"] for s in steps] == ["applied"]
            applied_revisions.add(steps[0]["applied_revision"])
            assert datetime.fromisoformat(steps[0]["at"]) <= datetime.fromisoformat(
                str(next(r["at"] for r in rows if r["actor"] == f"schedule:s{number}"))
            )
        assert applied_revisions == set(revisions)
        logs = [server.log_path.read_text() for server in servers]
        wins = [log.count("Applied due steps of schedule:") for log in logs]
        lost = [log.count("were applied by another writer") for log in logs]
        print(f"steps applied by each server: {wins}; found applied by the other: {lost}")
        assert sum(wins) == SCHEDULES
        assert sum(lost) >= 1  # they did race: a server read a step as due, then lost it
