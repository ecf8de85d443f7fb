"""How long an edge takes from nothing to ready, following an upstream with many subjects.

    python bench/edge_cold_start_bench.py       # 1,000,000 subjects

A read-only `flaggery` server loads the seeded scratch database; then this process times
`Evaluator.from_upstream(url).start()` (GET /v1/snapshot, decode, build the snapshot), best
and worst of a few rounds. Target (issue 11): <= 3 s to ready.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from edge_propagation_bench import replica_server
from report import print_measures
from seed import SERVER_URL, scratch_database, seed

from flaggery import Evaluator


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as db_url:
        await seed(db_url, args.subjects)
        with replica_server(db_url) as upstream:
            timings = []
            for _ in range(args.rounds):
                edge = Evaluator.from_upstream(upstream)
                started = time.perf_counter()
                await edge.start()
                timings.append(time.perf_counter() - started)
                assert len(edge.snapshot.to_state().subjects.ids) == args.subjects
                await edge.stop()
    return {
        "subjects": args.subjects,
        "rounds": args.rounds,
        "cold_start_best_s": round(min(timings), 2),
        "cold_start_worst_s": round(max(timings), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    print_measures("edge_cold_start", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
