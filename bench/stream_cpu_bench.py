"""CPU time per stream connection per event, in one process, without sockets.

    python bench/stream_cpu_bench.py            # 1,000 streams, 60 events, both send guards

``--streams`` GET /v1/stream responses (the route's own generator over one Broadcast) are
served to fake ASGI clients whose sends complete at once; each event is published and timed
(process CPU time) until every stream has sent it. Two ways of disconnecting a client whose
send blocks are compared, alternately: sse-starlette's ``send_timeout`` (a cancel scope and a
timer around every send; the route before) and flaggery.stream.send_watch (one watchdog per
process; the route now). Reports the median per event and per connection. This is the
server's Python cost only; bench/stream_fanout_bench.py measures the whole path over sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from report import print_measures
from sse_starlette import EventSourceResponse

from flaggery.engine.model import Change
from flaggery.http.gc_tuning import tune_for_serving
from flaggery.stream.broadcast import Broadcast
from flaggery.stream.follow import follow
from flaggery.stream.send_watch import SEND_TIMEOUT_SECONDS, SendWatch, WatchedEventSourceResponse
from flaggery.stream.sse import wire_bytes


async def per_event_seconds(guard: str, streams: int, events: int) -> list[float]:
    broadcast = Broadcast()
    broadcast.on_swap(0, None, "full load")
    watch = SendWatch()
    sent = 0
    target = 0
    all_sent = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        nonlocal sent
        if message["type"] == "http.response.body" and message["body"]:
            sent += 1
            if sent == target:
                all_sent.set()

    never = asyncio.Event()

    async def receive() -> dict[str, object]:
        await never.wait()
        return {"type": "http.disconnect"}

    tasks = []
    for _ in range(streams):
        content = wire_bytes(follow(broadcast, None, None))
        response: EventSourceResponse
        if guard == "watch":
            response = WatchedEventSourceResponse(content, watch=watch, ping=15)
        else:
            response = EventSourceResponse(content, ping=15, send_timeout=SEND_TIMEOUT_SECONDS)
        scope = {"type": "http", "method": "GET"}
        tasks.append(asyncio.create_task(response(scope, receive, send)))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)  # every stream subscribed and waiting
    times = []
    for revision in range(1, events + 1):
        target = streams * revision
        all_sent.clear()
        started = time.process_time()
        broadcast.on_swap(revision, [Change(revision, "set_rollout", ())], None)
        await all_sent.wait()
        times.append(time.process_time() - started)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    gc.collect()
    return times


async def run(args: argparse.Namespace) -> dict[str, object]:
    tune_for_serving()  # as in a server process
    samples: dict[str, list[float]] = {"send_timeout": [], "watch": []}
    for _ in range(args.rounds):
        for guard in samples:
            samples[guard] += await per_event_seconds(guard, args.streams, args.events)
    result: dict[str, object] = {"streams": args.streams, "events": args.events * args.rounds}
    for guard, times in samples.items():
        median = statistics.median(times)
        result[f"{guard}_ms_per_event"] = round(median * 1000, 2)
        result[f"{guard}_us_per_connection"] = round(median / args.streams * 1e6, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    print_measures("stream_cpu", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
