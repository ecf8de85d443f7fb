"""How fast a write committed on PostgreSQL shows up on an edge replica, one or two hops away.

    python bench/edge_propagation_bench.py             # 100k subjects, 100 + 20 writes
    python bench/edge_propagation_bench.py --levels 2  # the same through an edge server too

A read-only `flaggery` server follows the scratch database (LISTEN/NOTIFY). With ``--levels 1``
this process runs `Evaluator.from_upstream` against that server (GET /v1/snapshot, then GET
/v1/stream); with ``--levels 2`` an edge server (`flaggery --upstream`, no database) follows the
read-only server and the Evaluator here follows the edge: the two-level tree of issue 11. A
writer process commits subject writes and rollout moves one at a time, printing each revision
and the wall-clock time right after its commit; the Evaluator's subscriber
(`Evaluator.subscribe`) notes when each revision becomes visible. Target (issue 11): p99 <= 20 ms
for both kinds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import textwrap
import time
from collections.abc import Iterator

from http_bench import flaggery_command, free_port, server
from report import latency_measures, print_measures
from seed import SERVER_URL, scratch_database, seed

from flaggery import Evaluator
from flaggery.store.subscribers import Update

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from flaggery import AsyncFlaggery

    async def main(url, subjects, rollouts, first_id):
        every = (subjects + rollouts) // rollouts
        async with AsyncFlaggery.from_db_url(url) as store:
            for n in range(subjects + rollouts):
                if n % every == every - 1 and rollouts:
                    rollouts -= 1
                    await store.set_rollout_proportion("feature_02", (n % 20) / 20 + 0.025)
                    kind = "rollout"
                else:
                    await store.add_subject(first_id + n, 1 + n % 9)
                    kind = "subject"
                print(kind, await store.revision(), time.time(), flush=True)
                await asyncio.sleep(0.02)  # one write at a time, as an admin would

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    """
)


@contextlib.contextmanager
def replica_server(db_url: str) -> Iterator[str]:
    """A read-only `flaggery` on ``db_url`` on a free port, ready; its URL."""
    with flaggery_server(["--db-url", db_url]) as url:
        yield url


@contextlib.contextmanager
def edge_server(upstream: str) -> Iterator[str]:
    """An edge `flaggery --upstream` (no database) following ``upstream``, ready; its URL."""
    with flaggery_server(["--upstream", upstream]) as url:
        yield url


@contextlib.contextmanager
def flaggery_server(arguments: list[str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server([*flaggery_command(port, 1), *arguments], {}, url + "/readyz"):
        yield url


async def measure(upstream: str, db_url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    visible_at: dict[int, float] = {}

    async with Evaluator.from_upstream(upstream) as edge:
        seen = [edge.revision]

        def visible(update: Update) -> None:  # right after the swap, on the feed's task
            now = time.time()
            for revision in range(seen[0] + 1, update.revision + 1):  # a patch or a reload
                visible_at[revision] = now
            seen[0] = max(seen[0], update.revision)

        edge.subscribe(visible)
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, db_url, str(args.subject_writes),
            str(args.rollout_writes), str(args.subjects + 1), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        output, _ = await writer.communicate()
        await asyncio.sleep(0.5)
    latencies: dict[str, list[float]] = {"subject": [], "rollout": []}
    for line in output.decode().splitlines():
        kind, revision, committed = line.split()
        latencies[kind].append((visible_at[int(revision)] - float(committed)) * 1000)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as db_url:
        await seed(db_url, args.subjects)
        with contextlib.ExitStack() as servers:
            upstream = servers.enter_context(replica_server(db_url))
            if args.levels == 2:
                upstream = servers.enter_context(edge_server(upstream))
            latencies = await measure(upstream, db_url, args)
    return {"levels": args.levels, "subjects": args.subjects, **latency_measures(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--subject-writes", type=int, default=100)
    parser.add_argument("--rollout-writes", type=int, default=20)
    parser.add_argument("--levels", type=int, choices=(1, 2), default=1)
    args = parser.parse_args()
    print_measures("edge_propagation", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
