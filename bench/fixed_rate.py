"""A fixed-rate HTTP/1.1 load generator that times each request from its scheduled send time.

    from fixed_rate import Plan, run
    result = run(Plan("127.0.0.1", 8000, paths, rate=10_000, duration=30, connections=16))
    result.latencies_ms()        # one per request due in the run, from its scheduled time

Why not wrk or hey: both time a request from the moment it is actually sent. When a server
stalls, a client waiting for its answer sends nothing, so the requests a steady stream of
users *would* have sent during the stall are never timed ("coordinated omission"): a 100 ms
stall shows up as one slow request instead of a hundred. wrk2 fixes this but is not packaged
here; ``hey -q`` waits on a ticker (Go's ``time.Tick``, which drops ticks while the worker is
busy) and then times the request from the send, so it omits them too.

Here connection ``c`` of ``C`` sends request ``k`` at ``start + (c + k * C) / rate``: the
connections together send at exactly ``rate``, evenly spread. A connection carries one request
at a time (keep-alive, no pipelining), so when an answer is late the next request waits for it
and is sent as soon as the connection is free; its latency still counts from when it was due,
as a real client's would.

What is recorded per request, in seconds on the system-wide monotonic clock
(``time.perf_counter``, comparable across processes): when it was due, its latency (answer
complete minus due) and the generator's own lag: how long after it *could* have been sent
(``max(due, previous answer on its connection)``) it was sent. The lag is the generator's
error, not the server's: ``epoll`` waits in whole milliseconds, and a busy or descheduled
generator sends late. Reports give latency with and without it, and the lag itself, so a
generator that cannot keep up says so instead of blaming the server.

The work runs in ``processes`` child processes (plain ``epoll`` loops over raw non-blocking
sockets, no asyncio), started and joined by `run`; the caller's thread only waits.
"""

from __future__ import annotations

import heapq
import math
import multiprocessing
import re
import select
import socket
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

__all__ = ["Plan", "Result", "percentile", "run"]

# A request not answered this long after the last one was due is counted as unfinished, with
# its latency up to that moment (a lower bound).
GRACE_SECONDS = 2.0
# Children connect first; the schedule starts this long after the last one is ready.
START_DELAY_SECONDS = 0.2
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_MAX_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Plan:
    """What to send: GET ``paths`` (cycled, each connection from its own offset) to
    ``host:port`` at ``rate`` requests/s in total for ``duration`` seconds, over
    ``connections`` keep-alive connections shared out among ``processes`` processes."""

    host: str
    port: int
    paths: Sequence[str]
    rate: float
    duration: float
    connections: int = 16
    processes: int = 1


@dataclass
class Result:
    """Per request (parallel arrays, in no particular order): ``due`` (monotonic seconds),
    ``latency`` (s from due to the complete answer) and ``lag`` (s the generator sent late).
    ``statuses``: answers by HTTP status; ``errors``: requests lost with their connection;
    ``unfinished``: requests not answered by the end (in the arrays with a lower bound);
    ``cpu_seconds``: the generator processes' CPU time; ``start``: when the schedule began."""

    plan: Plan
    start: float = 0.0
    due: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    lag: array[float] = field(default_factory=lambda: array("d"))
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    unfinished: int = 0
    cpu_seconds: float = 0.0

    def latencies_ms(self, *, less_lag: bool = False) -> list[float]:
        """Latencies in ms, sorted; ``less_lag``: minus the generator's own lag."""
        if less_lag:
            return sorted(1000.0 * (a - b) for a, b in zip(self.latency, self.lag, strict=True))
        return sorted(1000.0 * value for value in self.latency)

    def lags_ms(self) -> list[float]:
        return sorted(1000.0 * value for value in self.lag)

    def merge(self, other: Result) -> None:
        self.due.extend(other.due)
        self.latency.extend(other.latency)
        self.lag.extend(other.lag)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.errors += other.errors
        self.unfinished += other.unfinished
        self.cpu_seconds += other.cpu_seconds


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of ``ordered`` (sorted, not empty), nearest rank."""
    rank = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def run(plan: Plan) -> Result:
    """Run the plan in child processes and return every request's timing. Blocks for about
    ``plan.duration`` seconds plus start-up (use ``asyncio.to_thread`` from async code)."""
    context = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for number in range(plan.processes):
        mine = [c for c in range(plan.connections) if c % plan.processes == number]
        parent_end, child_end = context.Pipe()
        child = context.Process(target=_child, args=(plan, mine, child_end), daemon=True)
        child.start()
        child_end.close()  # the child's copy only: a child that dies then ends recv() with EOF
        pipes.append(parent_end)
        children.append(child)
    try:
        for pipe in pipes:
            pipe.recv()  # connected
        start = time.perf_counter() + START_DELAY_SECONDS
        for pipe in pipes:
            pipe.send(start)
        result = Result(plan, start)
        for pipe in pipes:
            result.merge(pipe.recv())
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
    return result


def _child(plan: Plan, connections: list[int], pipe: Connection) -> None:
    loop = _Loop(plan, connections)
    pipe.send("ready")
    start = pipe.recv()
    cpu = time.process_time()
    result = loop.run(start)
    result.cpu_seconds = time.process_time() - cpu
    pipe.send(result)


class _Loop:
    """One process's connections: a heap of idle connections by next due time, and epoll for
    answers. State is kept in lists indexed by connection, not objects: this is the hot loop."""

    def __init__(self, plan: Plan, connections: list[int]) -> None:
        self.plan = plan
        self.numbers = connections
        # Request number c + k * C of the whole run goes to connection c: the run sends
        # round(duration * rate) requests in all.
        total = round(plan.duration * plan.rate)
        self.counts = [len(range(number, total, plan.connections)) for number in connections]
        host = f"Host: {plan.host}:{plan.port}"
        self.requests = [f"GET {path} HTTP/1.1\r\n{host}\r\n\r\n".encode() for path in plan.paths]
        self.sockets = [self._connect() for _ in connections]
        self.poll = select.epoll()
        for sock in self.sockets:
            self.poll.register(sock.fileno(), select.EPOLLIN)
        self.by_fd = {sock.fileno(): index for index, sock in enumerate(self.sockets)}
        self.result = Result(plan)
        self.start = 0.0
        n = len(connections)
        self.sent_k = [-1] * n  # the request in flight (or last sent) per connection
        self.due = [0.0] * n
        self.lag = [0.0] * n
        self.buffers = [b""] * n
        self.busy = [False] * n

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.plan.host, self.plan.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    def run(self, start: float) -> Result:
        self.start = start
        waiting = [(self._due(i, 0), i, 0) for i, count in enumerate(self.counts) if count]
        heapq.heapify(waiting)
        end = start + self.plan.duration + GRACE_SECONDS
        in_flight = 0
        while (waiting or in_flight) and time.perf_counter() <= end:
            now = time.perf_counter()
            while waiting and waiting[0][0] <= now:
                due, index, k = heapq.heappop(waiting)
                self._send(index, k, due, free_at=due)
                in_flight += 1
            timeout = waiting[0][0] - time.perf_counter() if waiting else _MAX_POLL_SECONDS
            for fd, _ in self.poll.poll(min(max(timeout, 0.0), _MAX_POLL_SECONDS)):
                found = self.by_fd.get(fd)  # None: an event of a socket replaced meanwhile
                answered = None if found is None else self._receive(found)
                if found is None or answered is None:
                    continue
                in_flight -= 1
                k = self.sent_k[found] + 1
                if k < self.counts[found]:
                    due = self._due(found, k)
                    if due <= answered:  # late already: its connection was busy until now
                        self._send(found, k, due, free_at=answered)
                        in_flight += 1
                    else:
                        heapq.heappush(waiting, (due, found, k))
        self._close(end)
        return self.result

    def _due(self, index: int, k: int) -> float:
        return self.start + (self.numbers[index] + k * self.plan.connections) / self.plan.rate

    def _send(self, index: int, k: int, due: float, free_at: float) -> None:
        request = self.requests[(self.numbers[index] * 7919 + k) % len(self.requests)]
        now = time.perf_counter()
        try:
            self.sockets[index].send(request)  # ~60 bytes into an empty buffer: never short
        except OSError:  # closed by the server while idle: send on a new connection
            self._reconnect(index)
            self.sockets[index].send(request)
        self.sent_k[index], self.due[index], self.busy[index] = k, due, True
        self.lag[index] = now - max(due, free_at)

    def _receive(self, index: int) -> float | None:
        """Read what arrived; the time the answer completed, or None if it is not complete."""
        try:
            data = self.sockets[index].recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            return self._lost(index)
        buffer = self.buffers[index] + data
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            self.buffers[index] = buffer
            return None
        length = _CONTENT_LENGTH.search(buffer, 0, head_end + 2)
        total = head_end + 4 + (int(length.group(1)) if length else 0)
        if len(buffer) < total:
            self.buffers[index] = buffer
            return None
        done = time.perf_counter()
        self.buffers[index] = buffer[total:]
        status = int(buffer[9:12])
        statuses = self.result.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self._record(index, done)
        return done

    def _record(self, index: int, done: float) -> None:
        self.busy[index] = False
        self.result.due.append(self.due[index])
        self.result.latency.append(done - self.due[index])
        self.result.lag.append(self.lag[index])

    def _lost(self, index: int) -> float | None:
        """The server closed the connection: reconnect; a request it carried is an error,
        and the connection is free from now (None if it carried none)."""
        carried = self.busy[index]
        self._reconnect(index)
        if not carried:
            return None
        self.result.errors += 1
        self.busy[index] = False
        return time.perf_counter()

    def _reconnect(self, index: int) -> None:
        old = self.sockets[index]
        self.poll.unregister(old.fileno())
        del self.by_fd[old.fileno()]
        old.close()
        sock = self._connect()
        self.sockets[index], self.buffers[index] = sock, b""
        self.poll.register(sock.fileno(), select.EPOLLIN)
        self.by_fd[sock.fileno()] = index

    def _close(self, end: float) -> None:
        """At the end: a request still unanswered, and those its connection never got to
        send, count as unfinished, with their latency up to ``end`` (a lower bound)."""
        for index, busy in enumerate(self.busy):
            if busy:
                self.result.unfinished += 1
                self._record(index, end)
                for k in range(self.sent_k[index] + 1, self.counts[index]):
                    self.due[index], self.lag[index] = self._due(index, k), 0.0
                    self.result.unfinished += 1
                    self._record(index, end)
        for sock in self.sockets:
            sock.close()
        self.poll.close()
