"""One admin process of the concurrency test: a stream of mixed writes, each one logged.

    python -m tests.live.admin_writer URL WORKER COUNT LOG

It connects, prints ``ready``, waits for a line on stdin (so that several processes start
writing at the same moment), then issues COUNT writes one after another and appends each to
LOG as a JSON line ``{"op", "args", "error", "expected", "at"}``: ``error`` is None when the
write was acknowledged, ``expected`` names the error of a write meant to fail, and ``at`` is
the wall-clock time it returned.

Every write touches what this worker owns (subjects in its own id range, its features,
rollouts and group) or what all workers share only by adding to it (buckets, the A/B test
and rollouts that grow with them, the ``everyone`` group's members). So the final state of
everything a worker owns follows from its own log, which `Owned.apply` replays.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from flaggery.errors import FlaggeryError
from flaggery.store.repository import AsyncFlaggery

SHARED_GROUP = "everyone"
PROPORTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)

Write = tuple[str, tuple[Any, ...], str | None]
"""(operation, arguments, the error it is meant to raise or None)."""


def first_subject_id(worker: int) -> int:
    return (worker + 1) * 1_000_000


def own_group(worker: int) -> str:
    return f"w{worker}"


@dataclass
class Owned:
    """What one worker's acknowledged writes made of the entities it owns."""

    subjects: dict[int, int] = field(default_factory=dict)
    """id -> weight"""
    groups_of: dict[int, list[str]] = field(default_factory=dict)
    """id -> group names in join order"""
    variants: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    rollouts: dict[str, tuple[str, float]] = field(default_factory=dict)
    """feature -> (variant, proportion)"""
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    """group -> {feature: variant}"""
    new_buckets: int = 0

    # One short case per admin operation.
    def apply(self, op: str, args: Sequence[Any]) -> None:  # noqa: C901
        """Record the effect of an acknowledged write."""
        if op == "add_subject":
            self.subjects[args[0]] = args[1]
            self.groups_of[args[0]] = []
        elif op == "set_subject_weight":
            self.subjects[args[0]] = args[1]
        elif op == "rm_subject":
            del self.subjects[args[0]], self.groups_of[args[0]]
        elif op == "add_subject_to_group":
            self.groups_of[args[0]].append(args[1])
        elif op == "rm_subject_from_group":
            self.groups_of[args[0]].remove(args[1])
        elif op == "add_feature":
            self.variants[args[0]] = []
        elif op == "add_variant":
            variant, feature, make_default = args
            self.variants[feature].append(variant)
            if make_default:
                self.defaults[feature] = variant
        elif op == "add_rollout":
            self.rollouts[args[1]] = (args[0], 0.0)
        elif op == "set_rollout_proportion":
            self.rollouts[args[0]] = (self.rollouts[args[0]][0], args[1])
        elif op == "add_group":
            self.overrides[args[0]] = {}
        elif op == "add_group_override":
            self.overrides[args[0]][args[1]] = args[2]
        elif op == "increase_buckets":
            self.new_buckets += args[0]
        else:
            raise ValueError(f"unknown operation {op!r}")


class WritePlanner:
    """Draws writes that are valid for the worker's current state (or meant to fail)."""

    def __init__(self, worker: int, owned: Owned) -> None:
        self.worker = worker
        self.owned = owned
        self.random = Random(worker)
        self.next_subject = first_subject_id(worker)
        self.next_feature = 0
        self.choices: list[tuple[float, Callable[[], Write | None]]] = [
            (28, self.add_subject),
            (14, self.set_subject_weight),
            (10, self.join_group),
            (5, self.leave_group),
            (3, self.remove_subject),
            (10, self.move_rollout),
            (4, self.add_feature),
            (6, self.add_variant),
            (4, self.add_rollout),
            (5, self.add_override),
            (2, self.increase_buckets),
            (4, self.failing_write),
        ]

    def first_writes(self) -> list[Write]:
        return [("add_group", (own_group(self.worker),), None)]

    def next_write(self) -> Write:
        (make,) = self.random.choices(
            [make for _, make in self.choices], [weight for weight, _ in self.choices]
        )
        return make() or self.add_subject()

    def add_subject(self) -> Write:
        self.next_subject += 1
        return "add_subject", (self.next_subject, self.random.randint(1, 9)), None

    def set_subject_weight(self) -> Write | None:
        if not self.owned.subjects:
            return None
        subject = self.random.choice(sorted(self.owned.subjects))
        # Always a different weight: an unchanged one is a no-op that writes no change row.
        weight = self.owned.subjects[subject] % 9 + 1
        return "set_subject_weight", (subject, weight), None

    def join_group(self) -> Write | None:
        options = [
            (subject, group)
            for subject, groups in self.owned.groups_of.items()
            for group in (SHARED_GROUP, own_group(self.worker))
            if group not in groups
        ]
        return ("add_subject_to_group", self.random.choice(options), None) if options else None

    def leave_group(self) -> Write | None:
        options = [(s, g) for s, groups in self.owned.groups_of.items() for g in groups]
        return ("rm_subject_from_group", self.random.choice(options), None) if options else None

    def remove_subject(self) -> Write | None:
        if not self.owned.subjects:
            return None
        return "rm_subject", (self.random.choice(sorted(self.owned.subjects)),), None

    def move_rollout(self) -> Write | None:
        if not self.owned.rollouts:
            return None
        feature = self.random.choice(sorted(self.owned.rollouts))
        current = self.owned.rollouts[feature][1]
        proportion = self.random.choice([p for p in PROPORTIONS if p != current])
        return "set_rollout_proportion", (feature, proportion), None

    def add_feature(self) -> Write:
        self.next_feature += 1
        return "add_feature", (f"w{self.worker}-f{self.next_feature}",), None

    def add_variant(self) -> Write | None:
        if not self.owned.variants:
            return self.add_feature()
        feature = self.random.choice(sorted(self.owned.variants))
        variants = self.owned.variants[feature]
        return "add_variant", (f"v{len(variants)}", feature, not variants), None

    def add_rollout(self) -> Write | None:
        options = [
            f for f, vs in self.owned.variants.items() if vs and f not in self.owned.rollouts
        ]
        if not options:
            return None
        feature = self.random.choice(sorted(options))
        return "add_rollout", (self.random.choice(self.owned.variants[feature]), feature), None

    def add_override(self) -> Write | None:
        group = own_group(self.worker)
        current = self.owned.overrides.get(group, {})
        options = [
            (feature, variant)
            for feature, variants in self.owned.variants.items()
            for variant in variants
            if current.get(feature) != variant
        ]
        if group not in self.owned.overrides or not options:
            return None
        return "add_group_override", (group, *self.random.choice(options)), None

    def increase_buckets(self) -> Write:
        return "increase_buckets", (1,), None

    def failing_write(self) -> Write | None:
        never_added = first_subject_id(self.worker)
        failures: list[Write] = [("rm_subject", (never_added,), "SubjectNotFound")]
        if self.owned.subjects:
            subject = min(self.owned.subjects)
            failures.append(("add_subject", (subject, 1), "SubjectExists"))
            failures.append(("add_subject_to_group", (subject, "nobody"), "GroupNotFound"))
        if self.owned.rollouts:
            feature = min(self.owned.rollouts)
            failures.append(("set_rollout_proportion", (feature, 1.5), "InvalidRolloutProportion"))
        return self.random.choice(failures)


async def run(url: str, worker: int, count: int, log_path: Path) -> None:
    owned = Owned()
    planner = WritePlanner(worker, owned)
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.revision()  # connected before saying so
        print("ready", flush=True)
        sys.stdin.readline()
        with log_path.open("w") as log:
            first_writes = iter(planner.first_writes())
            for _ in range(count):
                op, args, expected_error = next(first_writes, None) or planner.next_write()
                try:
                    await getattr(store, op)(*args)
                except FlaggeryError as error:
                    error_name: str | None = error.name
                else:
                    error_name = None
                    owned.apply(op, args)
                record = {
                    "op": op,
                    "args": args,
                    "error": error_name,
                    "expected": expected_error,
                    "at": time.time(),
                }
                log.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    url, worker, count, log = sys.argv[1:]
    asyncio.run(run(url, int(worker), int(count), Path(log)))
