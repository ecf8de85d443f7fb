"""Load with Locust: flag reads weighted by subject weight, and a trickle of admin writes.

    python bench/locustfile.py [--users 32] [--duration 20]

seeds the benchmark dataset (bench/seed.py) into PostgreSQL, starts an admin server (1 worker)
and a read-only replica (2 workers), runs Locust headless against them and prints its latency
percentiles. Readers hit the replica; the admin user writes to the admin server, and the
replica sees each write through LISTEN/NOTIFY. Against servers you run yourself:

    FLAGGERY_ADMIN_URL=http://127.0.0.1:8001 \\
        locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 32 -t 20s
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

from locust import FastHttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed import SUBJECTS, feature_name, subject_weights

WEIGHTS = subject_weights()
IDS = list(WEIGHTS)
CUMULATIVE = list(itertools.accumulate(WEIGHTS.values()))
FLAGS_NAME = "/v1/subjects/{subject_id}/flags"


def weighted_subject() -> int:
    """Heavier subjects are asked for more often, as the weight means (traffic estimate)."""
    return random.choices(IDS, cum_weights=CUMULATIVE)[0]


class Reader(FastHttpUser):
    weight = 50
    wait_time = between(0.0, 0.01)

    @task(20)
    def flags(self) -> None:
        self.client.get(f"/v1/subjects/{weighted_subject()}/flags", name=FLAGS_NAME)

    @task(1)
    def subject(self) -> None:
        self.client.get(f"/v1/subjects/{weighted_subject()}", name="/v1/subjects/{subject_id}")


class Admin(FastHttpUser):
    """One writer, a few writes a second, against the admin server."""

    weight = 1
    fixed_count = 1
    wait_time = between(0.2, 0.5)

    def on_start(self) -> None:
        self.client.base_url = os.environ.get("FLAGGERY_ADMIN_URL", self.host)

    @task(3)
    def reweigh_subject(self) -> None:
        subject_id = random.randint(1, SUBJECTS)
        self.client.put(
            f"/v1/subjects/{subject_id}",
            params={"weight": random.randint(1, 10)},
            name="/v1/subjects/{subject_id}",
        )

    @task(1)
    def move_rollout(self) -> None:
        feature = feature_name(2 * random.randint(0, 9))  # the even features have rollouts
        self.client.put(
            f"/v1/features/{feature}/rollout",
            params={"proportion": random.choice([0.1, 0.25, 0.5, 0.9])},
            name="/v1/features/{feature}/rollout",
        )

    @task(1)
    def toggle_membership(self) -> None:
        subject_id = random.randint(1, SUBJECTS)
        path = f"/v1/groups/group_0/subjects/{subject_id}"
        name = "/v1/groups/{group}/subjects/{subject_id}"
        with self.client.post(path, name=name, catch_response=True) as response:
            if response.status_code == 400:  # a member already: take it out instead
                response.success()
                self.client.delete(path, name=name)


def main() -> None:
    import argparse
    import asyncio
    import contextlib

    from http_bench import flaggery_command, free_port, server
    from seed import create_database, seed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20, help="seconds")
    args = parser.parse_args()

    async def prepare() -> str:
        url = await create_database(args.postgres_url)
        await seed(url)
        return url

    db_url = asyncio.run(prepare())
    admin_port, replica_port = free_port(), free_port()
    admin, replica = (f"http://127.0.0.1:{port}" for port in (admin_port, replica_port))
    env = {"FLAGGERY_DB_URL": db_url}
    with contextlib.ExitStack() as stack:
        admin_command = [*flaggery_command(admin_port, 1), "--admin"]
        stack.enter_context(server(admin_command, env, admin + "/readyz"))
        replica_command = flaggery_command(replica_port, 2)
        stack.enter_context(server(replica_command, env, replica + "/readyz"))
        subprocess.run(
            [
                *(sys.executable, "-m", "locust", "-f", __file__, "--headless"),
                *("--host", replica, "-u", str(args.users), "-r", str(args.users)),
                *("-t", f"{args.duration}s", "--only-summary", "--loglevel", "WARNING"),
            ],
            env={**os.environ, "FLAGGERY_ADMIN_URL": admin},
            check=False,
        )


if __name__ == "__main__":
    main()
