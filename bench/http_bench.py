"""HTTP serving throughput: flaggery's flags route against a raw ASGI app sending constant bytes.

    python bench/http_bench.py [--duration 10] [--rounds 3] [--connections 16]

Seeds the benchmark dataset (bench/seed.py) into a new PostgreSQL database (dropped at the
end) and starts, each with 2 uvicorn workers (httptools, uvloop, no access log):
  - raw:        a bare ASGI app answering every request with a constant body of the same size
                as a typical flags response (the ceiling for this server stack),
  - flaggery:   ``flaggery`` in read-only mode,
  - flaggery+m: the same with Prometheus metrics on (multiprocess mode),
  - admin+ui:   ``flaggery --admin`` (no token, loopback), which also serves the dashboard at
                /ui/ (issue 13: the flags route bypasses the router, so the UI is not on it),
then drives them alternately with wrk (random subject ids 1..10,000 from a Lua script), for
``--rounds`` rounds of ``--duration`` seconds each. Prints a table and one JSON line.
Targets (issue 14), as medians of rounds: flaggery >= 0.90 x raw, with metrics >= 0.85 x;
(issue 13) admin+ui's ratio the same as flaggery's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from report import parse_wrk

BENCH_DIR = Path(__file__).resolve().parent
BODY_SIZE_VARIABLE = "FLAGGERY_BENCH_BODY_SIZE"
WRK_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/subjects/" .. math.random(1, %d) .. "/flags")
end
"""


def _constant_body() -> bytes:
    size = int(os.environ.get(BODY_SIZE_VARIABLE, "400"))
    prefix = b'{"flags":{"padding":"'
    return prefix + b"x" * max(size - len(prefix) - 3, 0) + b'"}}'


_BODY = _constant_body()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))],
}
_MESSAGE = {"type": "http.response.body", "body": _BODY}


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: no routing, no lookup, prebuilt messages."""
    await send(_START)
    await send(_MESSAGE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up in {timeout} s") from None
            time.sleep(0.2)


@contextlib.contextmanager
def server(
    command: list[str], env: dict[str, str], probe: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True)
    try:
        wait_until_up(probe)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def flaggery_command(port: int, workers: int) -> list[str]:
    cli = [sys.executable, "-c", "import sys; from flaggery.cli import main; sys.exit(main())"]
    return [*cli, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


def raw_command(port: int, workers: int) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "http_bench:raw_app", "--app-dir", str(BENCH_DIR)),
        *("--port", str(port), "--workers", str(workers), "--http", "httptools"),
        *("--loop", "uvloop", "--no-access-log", "--lifespan", "off", "--log-level", "warning"),
    ]


def typical_body_size(base: str, samples: int = 200) -> int:
    sizes = []
    for subject_id in range(1, samples + 1):
        with urllib.request.urlopen(f"{base}/v1/subjects/{subject_id}/flags") as response:
            sizes.append(len(response.read()))
    return round(statistics.mean(sizes))


def wrk(base: str, script: Path, args: argparse.Namespace) -> dict[str, float]:
    output = subprocess.run(
        [
            *("wrk", "-t", str(args.threads), "-c", str(args.connections)),
            *("-d", f"{args.duration}s", "--latency", "-s", str(script), base),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = parse_wrk(output)
    if result["non_2xx"] or result["socket_errors"]:
        raise RuntimeError(f"wrk saw errors against {base}:\n{output}")
    return result


def wrk_arguments(description: str, rounds: int) -> argparse.Namespace:
    """The command line every wrk benchmark takes (database, wrk load, server workers); exits
    if wrk is not installed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    return args


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0], rounds=3)

    ports = {name: free_port() for name in ("raw", "flaggery", "flaggery+m", "admin+ui")}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
    with contextlib.ExitStack() as stack:
        sys.path.insert(0, str(BENCH_DIR))
        from seed import seeded_database

        db_url = stack.enter_context(seeded_database(args.postgres_url))
        test_live_at = time.monotonic() + 2.5  # the seeded A/B test goes live 2 s after seeding
        env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        script = workdir / "random_subjects.lua"
        from seed import SUBJECTS

        script.write_text(WRK_SCRIPT % SUBJECTS)
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        servers = (("flaggery", "false", "false"), ("flaggery+m", "true", "false"))
        for name, metrics, admin in (*servers, ("admin+ui", "false", "true")):
            command = flaggery_command(ports[name], args.workers)
            flags_env = {**env, "FLAGGERY_ENABLE_PROMETHEUS": metrics, "FLAGGERY_ADMIN_MODE": admin}
            stack.enter_context(server(command, flags_env, base[name] + "/readyz"))
        time.sleep(max(0.0, test_live_at - time.monotonic()))
        size = typical_body_size(base["flaggery"])
        raw_env = {BODY_SIZE_VARIABLE: str(size)}
        stack.enter_context(server(raw_command(ports["raw"], args.workers), raw_env, base["raw"]))
        for round_number in range(1, args.rounds + 1):
            for name in ports:
                outcome = wrk(base[name], script, args)
                results[name].append(outcome)
                print(f"round {round_number} {name:<11} {outcome['rps']:>10,.0f} req/s", flush=True)
    report(results, size, args)


def report(results: dict[str, list[dict[str, float]]], size: int, args: argparse.Namespace) -> None:
    """The median round of each server (the target's measure: one lucky round on a shared
    machine says little), and its ratio to the raw app's median round of the same run."""
    median = {name: statistics.median(run["rps"] for run in runs) for name, runs in results.items()}
    best = {name: max(run["rps"] for run in runs) for name, runs in results.items()}
    raw = median["raw"]
    print()
    print(f"{'server':<12}{'req/s median':>14}{'req/s best':>12}{'x raw (median)':>16}")
    for name in results:
        print(f"{name:<12}{median[name]:>14,.0f}{best[name]:>12,.0f}{median[name] / raw:>16.2f}")
    summary = {
        "benchmark": "http_flags",
        "body_bytes": size,
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "runs": results,
        "ratio": round(median["flaggery"] / raw, 3),
        "ratio_with_metrics": round(median["flaggery+m"] / raw, 3),
        "ratio_admin_ui": round(median["admin+ui"] / raw, 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
