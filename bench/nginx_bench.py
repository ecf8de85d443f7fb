"""The flags route against nginx returning the same bytes: the limit of an HTTP/1.1 server here.

    python bench/nginx_bench.py [--duration 10] [--rounds 5] [--connections 16] [--workers 2]

Needs nginx and wrk on the PATH (Debian/Ubuntu: ``apt-get install -y nginx wrk``; nginx is
started from a scratch configuration, never as the system service). Seeds the benchmark
dataset (bench/seed.py) into a new PostgreSQL database (dropped at the end), starts
``flaggery`` read-only and nginx, each with ``--workers`` worker processes, nginx answering
every request with subject 1's flags body (``return 200``, ``application/json``), and drives
them alternately with wrk (random subject ids for flaggery, from http_bench.py's Lua script)
for ``--rounds`` rounds. Issue 25, goal 2: the flags route at least 0.75x nginx (median of 5).

How wrk's connections fall on the workers moves the result (one worker holding 12 of 16
connections serves them on one core): during every run the established connections of each
server's port are counted per worker process (``ss -tnp``) and printed beside its rate, as
"9+7" (the largest share first). Prints a table and one JSON line, with the load average.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from http_bench import (  # noqa: E402
    WRK_SCRIPT,
    flaggery_command,
    free_port,
    server,
    wrk,
    wrk_arguments,
)

NGINX_CONF = """
worker_processes %(workers)d;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            default_type application/json;
            return 200 '%(body)s';
        }
    }
}
"""
_PID = re.compile(rb"pid=(\d+)")


def connection_split(port: int) -> str:
    """The established connections to `port` per server process, largest first: "9+7"."""
    output = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        check=True,
        capture_output=True,
    ).stdout
    per_process = collections.Counter(_PID.findall(output))
    return "+".join(str(count) for _, count in per_process.most_common()) or "?"


def measured(base: str, port: int, script: Path, args: object) -> tuple[float, str]:
    """wrk's requests per second against `base`, and the split of its connections, sampled a
    second into the run."""
    split: list[str] = []
    sampler = threading.Timer(1.0, lambda: split.append(connection_split(port)))
    sampler.start()
    try:
        outcome = wrk(base, script, args)  # type: ignore[arg-type]
    finally:
        sampler.join()
    return outcome["rps"], split[0] if split else "?"


def nginx(port: int, workers: int, body: bytes, workdir: Path) -> subprocess.Popen[bytes]:
    if b"'" in body or b"$" in body or b"\\" in body:
        sys.exit("the flags body needs quoting this benchmark does not do")
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF % {"workers": workers, "dir": workdir, "port": port, "body": body.decode()}
    )
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)])


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0], rounds=5)
    if shutil.which("nginx") is None:
        sys.exit("nginx is not installed (apt-get install -y nginx)")
    ports = {"nginx": free_port(), "flaggery": free_port()}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    rates: dict[str, list[float]] = {name: [] for name in ports}
    splits: dict[str, list[str]] = {name: [] for name in ports}
    with contextlib.ExitStack() as stack:
        from seed import SUBJECTS, seeded_database

        db_url = stack.enter_context(seeded_database(args.postgres_url))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        script = workdir / "random_subjects.lua"
        script.write_text(WRK_SCRIPT % SUBJECTS)
        env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
        command = flaggery_command(ports["flaggery"], args.workers)
        stack.enter_context(server(command, env, base["flaggery"] + "/readyz"))
        time.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        with urllib.request.urlopen(base["flaggery"] + "/v1/subjects/1/flags") as response:
            body = response.read()
        process = nginx(ports["nginx"], args.workers, body, workdir)
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        time.sleep(1.0)
        urllib.request.urlopen(base["nginx"]).read()  # up, or raise
        for round_number in range(1, args.rounds + 1):
            for name, port in ports.items():
                rate, split = measured(base[name], port, script, args)
                rates[name].append(rate)
                splits[name].append(split)
                print(f"round {round_number} {name:<9}{rate:>10,.0f} req/s  connections {split}")
    report(rates, splits, args.rounds)


def report(rates: dict[str, list[float]], splits: dict[str, list[str]], rounds: int) -> None:
    median = {name: statistics.median(values) for name, values in rates.items()}
    load = os.getloadavg()[0]
    print(f"\n{'server':<10}{'req/s median':>14}{'of nginx':>10}   (load average {load:.2f})")
    for name, rate in median.items():
        print(f"{name:<10}{rate:>14,.0f}{rate / median['nginx']:>10.2f}   {' '.join(splits[name])}")
    print(json.dumps({
        "benchmark": "nginx", "rounds": rounds, "load_average": round(load, 2),
        "req_per_s": {name: round(rate) for name, rate in median.items()},
        "ratio_flags_to_nginx": round(median["flaggery"] / median["nginx"], 3),
        "connection_splits": splits,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
