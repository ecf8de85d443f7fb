"""Admin writes of every kind at a fixed rate, for benchmarks that read while the state changes.

    writer = ChangeWriter("http://127.0.0.1:8001", subjects=100_000, rate=50)
    changes = await writer.run(duration=30)   # one Change per write, acknowledged or not

Works on the benchmark dataset (bench/seed.py). Each kind is a lane of its own with its own
fixed schedule (``rate`` shared equally among the lanes) and one keep-alive connection; a lane
writes in order (a test is started before it is stopped), so when a write takes longer than the
lane's interval the next one goes as soon as it is acknowledged and the lane falls behind:
the achieved rate is in the result, never assumed. The kinds:

- ``subject``:  a subject's weight (PUT /v1/subjects/{id}), which only patches the subject index;
- ``rollout``:  a rollout's proportion moved (PUT /v1/features/{feature}/rollout);
- ``test``:     an A/B test started, stopped, deleted, in turn (POST /v1/abtests, .../stop, DELETE);
- ``group``:    a subject joining or leaving a group (POST or DELETE /v1/groups/{g}/subjects/{id});
- ``override``: a group override added or removed, in turn (/v1/groups/{g}/overrides/{feature}).

Every kind but ``subject`` changes the configuration: the replicas re-resolve their views.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from seed import FEATURES, feature_name

__all__ = ["CONFIGURATION_KINDS", "KINDS", "Change", "ChangeWriter"]

KINDS = ("subject", "rollout", "test", "group", "override")
CONFIGURATION_KINDS = KINDS[1:]
TIMEOUT_SECONDS = 10.0
# Not in the seeded test (the last four features) and without a rollout (odd): free to test.
TESTED_FEATURE = feature_name(1)
JOIN_GROUP, OVERRIDE_GROUP, OVERRIDE_FEATURE = "group_1", "group_2", feature_name(7)
PROPORTIONS = (0.1, 0.25, 0.5, 0.9)

Write = tuple[str, str, dict[str, Any] | None]
"""(method, path with query, JSON body or None)."""


@dataclass(frozen=True)
class Change:
    """One write: its kind, when it was due and when it was answered (monotonic seconds,
    ``time.perf_counter``), and whether it was acknowledged (2xx) or why not."""

    kind: str
    due: float
    answered: float
    acknowledged: bool
    error: str | None = None


class ChangeWriter:
    def __init__(
        self,
        base_url: str,
        subjects: int,
        rate: float,
        kinds: Sequence[str] = KINDS,
        seed: int = 5,
    ) -> None:
        """Write to the admin server at ``base_url`` at ``rate`` writes/s in all, shared
        equally among ``kinds``; ``subjects``: the seeded subject ids are 1..subjects."""
        self.base_url = base_url
        self.subjects = subjects
        self.interval = len(kinds) / rate
        self.kinds = kinds
        self.rng = random.Random(seed)

    async def run(self, duration: float) -> list[Change]:
        """Write for ``duration`` seconds; every write's outcome, lanes interleaved."""
        start = time.perf_counter()
        lanes = [
            self._lane(kind, start + number * self.interval / len(self.kinds), duration)
            for number, kind in enumerate(self.kinds)
        ]
        changes: list[Change] = []
        for lane in await asyncio.gather(*lanes):
            changes.extend(lane)
        return sorted(changes, key=lambda change: change.answered)

    async def _lane(self, kind: str, first: float, duration: float) -> list[Change]:
        writes = await self._writes(kind)
        done: list[Change] = []
        async with httpx.AsyncClient(base_url=self.base_url, timeout=TIMEOUT_SECONDS) as client:
            write: Write | None = None
            while (due := first + len(done) * self.interval) < first + duration:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                write = next(writes)
                done.append(await _send(client, kind, due, write))
            # A test left running would make the next run's first test overlap it (refused):
            # finish the cycle (stop, delete) untimed.
            while kind == "test" and write is not None and write[0] != "DELETE":
                write = next(writes)
                await _send(client, kind, time.perf_counter(), write)
        return done

    async def _writes(self, kind: str) -> Iterator[Write]:
        if kind == "group":
            async with httpx.AsyncClient(base_url=self.base_url) as client:
                members = (await client.get(f"/v1/groups/{JOIN_GROUP}")).json()["subjects"]
            return self._joins_and_leaves(set(members))
        return {
            "subject": self._weights,
            "rollout": self._rollout_moves,
            "test": self._test_cycles,
            "override": self._override_cycles,
        }[kind]()

    def _weights(self) -> Iterator[Write]:
        while True:
            subject_id, weight = self.rng.randint(1, self.subjects), self.rng.randint(1, 10)
            yield "PUT", f"/v1/subjects/{subject_id}?weight={weight}", None

    def _rollout_moves(self) -> Iterator[Write]:
        rolled_out = [feature_name(index) for index in range(0, FEATURES, 2)]
        for feature, proportion in zip(
            itertools.cycle(rolled_out), itertools.cycle(PROPORTIONS[::-1]), strict=False
        ):
            yield "PUT", f"/v1/features/{feature}/rollout?proportion={proportion}", None

    def _test_cycles(self) -> Iterator[Write]:
        groups = [
            {"name": "control", "variants": {TESTED_FEATURE: "A"}},
            {"name": "experiment", "variants": {TESTED_FEATURE: "B"}},
        ]
        for number in itertools.count():
            name = f"bench_{number}"
            end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            yield "POST", "/v1/abtests", {"test": {"name": name, "end": end, "groups": groups}}
            yield "POST", f"/v1/abtests/{name}/stop", None
            yield "DELETE", f"/v1/abtests/{name}", None

    def _joins_and_leaves(self, members: set[int]) -> Iterator[Write]:
        while True:
            subject_id = self.rng.randint(1, self.subjects)
            path = f"/v1/groups/{JOIN_GROUP}/subjects/{subject_id}"
            if subject_id in members:
                members.remove(subject_id)
                yield "DELETE", path, None
            else:
                members.add(subject_id)
                yield "POST", path, None

    def _override_cycles(self) -> Iterator[Write]:
        path = f"/v1/groups/{OVERRIDE_GROUP}/overrides/{OVERRIDE_FEATURE}"
        while True:
            yield "POST", f"{path}?variant=A", None
            yield "DELETE", path, None


async def _send(client: httpx.AsyncClient, kind: str, due: float, write: Write) -> Change:
    method, path, body = write
    try:
        response = await client.request(method, path, json=body)
    except httpx.HTTPError as error:
        return Change(kind, due, time.perf_counter(), False, f"{method} {path}: {error!r}")
    answered = time.perf_counter()
    if response.is_success:
        return Change(kind, due, answered, True)
    reason = f"{method} {path}: {response.status_code} {response.text[:200]}"
    return Change(kind, due, answered, False, reason)
