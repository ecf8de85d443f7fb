"""bench/fixed_rate.py against a tiny local server that can stall: every request is timed from
when it was due, so a stall shows in every request scheduled during it (no coordinated
omission), and the schedule itself is the planned one."""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def fixed_rate(monkeypatch: pytest.MonkeyPatch) -> Any:
    # On sys.path rather than loaded from its file: the generator's spawned children import it.
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delitem(sys.modules, "fixed_rate", raising=False)
    import fixed_rate

    return fixed_rate


class StallingServer:
    """One thread answering every connection, like one event loop: `stall_at` (perf_counter
    seconds) makes it stop answering for `stall_seconds` once, for all connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stall_at: float | None = None
        self.stall_seconds = 0.0
        self.stop = threading.Event()

    def serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        while not self.stop.is_set():
            for key, _ in selector.select(0.01):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    selector.register(sock.accept()[0], selectors.EVENT_READ)
                    continue
                data = sock.recv(65536)
                if not data:
                    selector.unregister(sock)
                    sock.close()
                    continue
                if self.stall_at is not None and time.perf_counter() >= self.stall_at:
                    self.stall_at = None
                    time.sleep(self.stall_seconds)
                sock.sendall(ANSWER * data.count(b"\r\n\r\n"))
        selector.close()


@contextlib.contextmanager
def running(server: StallingServer) -> Iterator[StallingServer]:
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join()
        server.listener.close()


def test_every_request_is_sent_on_its_schedule_and_answered(fixed_rate: Any) -> None:
    with running(StallingServer()) as server:
        plan = fixed_rate.Plan("127.0.0.1", server.port, ["/a", "/b"], rate=500, duration=1.0)
        result = fixed_rate.run(plan)
    assert result.statuses == {200: 500}
    assert (result.errors, result.unfinished) == (0, 0)
    dues = sorted(result.due)
    gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
    assert min(gaps) == pytest.approx(1 / 500) and max(gaps) == pytest.approx(1 / 500)
    assert dues[0] == pytest.approx(result.start)


def test_a_stall_counts_against_every_request_due_during_it(fixed_rate: Any) -> None:
    """A 200 ms stall at 1,000 requests/s over 4 connections: the ~100 requests due in its
    first half all wait at least 100 ms. Timed from the send (coordinated omission), only the
    one request in flight per connection would: at most 4."""
    server = StallingServer()
    server.stall_seconds = 0.2
    with running(server):
        server.stall_at = time.perf_counter() + 1.0  # after the children start, mid-run
        plan = fixed_rate.Plan(
            "127.0.0.1", server.port, ["/a"], rate=1000, duration=1.5, connections=4
        )
        result = fixed_rate.run(plan)
    assert result.statuses == {200: 1500}
    slow = [value for value in result.latencies_ms(less_lag=True) if value >= 100.0]
    assert len(slow) >= 60
    assert max(slow) >= 190.0
