"""Load with Locust: flag reads weighted by subject weight, and a trickle of admin writes.

    pip install -e '.[bench]'            # Locust and psutil: the bench extra
    python bench/locustfile.py [--users 32] [--spawn-rate 32] [--duration 20]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--database NAME [--replace-database]] [--admin-port P] [--replica-port P]

creates a database on that PostgreSQL server (a random name, or ``--database``; one that
exists already is never dropped unless ``--replace-database`` says so), seeds the benchmark
dataset (bench/seed.py), starts an admin server (1 worker) and a read-only replica (2
workers) on the given ports (default: free ones), runs Locust headless against them with all
users started at once, prints a table and one JSON line (latencies in ms), and drops the
database. Readers hit the replica; the admin user writes to the admin server, and the replica
sees each write through LISTEN/NOTIFY. Exit status: Locust's (1 if any request failed).

Against servers you run yourself, on a database seeded by ``python bench/seed.py``:

    FLAGGERY_ADMIN_URL=http://127.0.0.1:8001 \\
        locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 32 -r 32 -t 20s

(``-r 32`` starts the 32 users at once; Locust's default starts one a second.)
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

try:
    from locust import FastHttpUser, between, task
except ModuleNotFoundError as missing:
    raise SystemExit(
        "bench/locustfile.py needs Locust: pip install -e '.[bench]' (the bench extra)"
    ) from missing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import percentile
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


def main() -> int:
    import argparse
    import contextlib
    import tempfile

    from http_bench import flaggery_command, free_port, server
    from seed import SERVER_URL, add_database_options, seeded_database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=SERVER_URL, help="a PostgreSQL server URL")
    add_database_options(parser, default=None)
    parser.add_argument("--admin-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--replica-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--spawn-rate", type=float, help="users started a second (--users)")
    parser.add_argument("--duration", type=int, default=20, help="seconds")
    args = parser.parse_args()

    admin_port, replica_port = args.admin_port or free_port(), args.replica_port or free_port()
    admin, replica = (f"http://127.0.0.1:{port}" for port in (admin_port, replica_port))
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(
            seeded_database(args.postgres_url, args.database, replace=args.replace_database)
        )
        env = {"FLAGGERY_DB_URL": db_url}
        admin_command = [*flaggery_command(admin_port, 1), "--admin"]
        stack.enter_context(server(admin_command, env, admin + "/readyz"))
        replica_command = flaggery_command(replica_port, 2)
        stack.enter_context(server(replica_command, env, replica + "/readyz"))
        stats = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "stats"
        spawn_rate = args.spawn_rate or args.users
        result = subprocess.run(
            [
                *(sys.executable, "-m", "locust", "-f", __file__, "--headless"),
                *("--host", replica, "-u", str(args.users), "-r", str(spawn_rate)),
                *("-t", f"{args.duration}s", "--only-summary", "--loglevel", "WARNING"),
                *("--json-file", str(stats)),
            ],
            env={**os.environ, "FLAGGERY_ADMIN_URL": admin},
            check=False,
        )
        report(json.loads(stats.with_suffix(".json").read_text()), args)
    return result.returncode


def report(entries: list[dict[str, Any]], args: Any) -> None:
    """A table per request name and one JSON line: requests, failures, p50/p99/p99.9 (ms)."""
    result: dict[str, Any] = {"benchmark": "locust", "users": args.users}
    result["duration_s"] = args.duration
    result["requests"] = sum(entry["num_requests"] for entry in entries)
    result["failures"] = sum(entry["num_failures"] for entry in entries)
    result["by_request"] = {}
    print(f"{'request':<44} {'count':>8} {'fail':>5} {'p50':>5} {'p99':>5} {'p99.9':>6}")
    for entry in sorted(entries, key=lambda entry: (entry["name"], entry["method"])):
        name = f"{entry['method']} {entry['name']}"
        p50, p99, p999 = (latency(entry, q) for q in (0.5, 0.99, 0.999))
        print(f"{name:<44} {entry['num_requests']:>8} {entry['num_failures']:>5} "
              f"{p50:>5} {p99:>5} {p999:>6}")  # fmt: skip
        result["by_request"][name] = {
            "requests": entry["num_requests"],
            "failures": entry["num_failures"],
            "p50_ms": p50,
            "p99_ms": p99,
            "p99.9_ms": p999,
        }
    print(json.dumps(result))


def latency(entry: dict[str, Any], fraction: float) -> float:
    """The latency at ``fraction`` (0..1) of an entry's response times, in ms (Locust keeps
    them rounded, as counts per value)."""
    times = [float(ms) for ms, count in entry["response_times"].items() for _ in range(count)]
    return percentile(times, fraction) if times else 0.0


if __name__ == "__main__":
    sys.exit(main())
