"""Group commit: the concurrent writes of one process share one transaction and one commit.

Writes queue in arrival order. One batch task at a time takes up to `MAX_BATCH` of them, opens
one transaction (``begin``, supplied by the database handle) and lends it to each write in
turn, in queue order: each runs its own validation and statements while the others wait, so
the writes of a batch are applied one after another exactly as separate transactions would
be. The batch then commits once, and only then is any of its writes answered: an
acknowledged write is durable. If the transaction fails (the connection is lost, the commit is
refused) every write of the batch fails with DatabaseUnavailable; none is acknowledged.

A write that fails on its own (a refused write) is undone by the database handle (a
SAVEPOINT per write) and fails alone, but only once the batch has committed: its verdict was
reached on a state that included the batch's earlier writes, so if they are lost it is
DatabaseUnavailable too. While one batch commits, the next one queues, which is where the
throughput comes from: one commit (one fsync, one NOTIFY, one lock hold) for many writes.

A write may also come as a plan (data, `submit`) rather than as a block of code (`turn`):
consecutive plans in a batch are handed together to ``apply``, which judges each in order and
applies them set-based, in a few statements (flaggery.store.planned_writes).

Before it starts, a batch waits up to GATHER_SECONDS while fewer writes are queued than the
last batch had: writers that wait for their answers come back one after another, and a batch
started at the first of them would carry it alone (`GroupCommit._gather`).

No task outlives the writes it serves: a batch task starts when a write finds none running
and ends when the queue is empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

from flaggery.errors import DatabaseUnavailable

__all__ = ["MAX_BATCH", "GroupCommit"]

log = logging.getLogger(__name__)

B = TypeVar("B")
P = TypeVar("P")
R = TypeVar("R")

MAX_BATCH = 100
"""Writes per transaction at most: bounds how long one commit keeps the next batch waiting."""

GATHER_SECONDS = 0.002
"""How long a batch may wait, before it starts, for the writers of the previous batch to send
their next writes (see `GroupCommit._gather`)."""


class _Turn(Generic[B, P, R]):
    """One write's place in the queue, and what the batch task tells it."""

    __slots__ = ("batch", "committed", "error", "finished", "outcome", "plan", "started")

    def __init__(self, plan: P | None = None) -> None:
        self.plan = plan
        """A planned write (`submit`); None for a block of code (`turn`)."""
        self.outcome: R | None = None
        """What ``apply`` made of the plan."""
        self.batch: B | None = None
        self.error: BaseException | None = None
        self.started = asyncio.Event()
        """Set when the write may use the batch (or the batch failed before its turn)."""
        self.finished = asyncio.Event()
        """Set by the write when it is done with the batch (also if it failed or was cancelled)."""
        self.committed = asyncio.Event()
        """Set once the batch has committed or failed (`error`)."""

    def end(self, error: BaseException | None) -> None:
        self.error = error
        self.started.set()
        self.committed.set()


class GroupCommit(Generic[B, P, R]):
    """Batches the writes of one event loop; see the module docstring.

    ``begin()`` opens one batch: an async context manager that connects and begins a
    transaction, yields what each write of the batch is lent (``B``), and commits on a normal
    exit; an exception from it fails the whole batch. ``apply(batch, plans)`` applies
    consecutive planned writes and returns one outcome each, in order; an exception from it
    fails the whole batch too.
    """

    def __init__(
        self,
        begin: Callable[[], AbstractAsyncContextManager[B]],
        apply: Callable[[B, Sequence[P]], Awaitable[Sequence[R]]],
        max_batch: int = MAX_BATCH,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._begin = begin
        self._apply = apply
        self._max_batch = max_batch
        self._gather_seconds = gather_seconds
        self._queue: deque[_Turn[B, P, R]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self._last_batch = 0
        """How many writes the last batch had."""

    @property
    def waiting(self) -> int:
        """Writes queued for a batch that has not started: nonzero while a batch ends means
        the next one starts at once."""
        return len(self._queue)

    async def submit(self, plan: P) -> R:
        """Queue a planned write; return its outcome once its batch has committed. Raises
        DatabaseUnavailable if the batch failed (nothing of it was written)."""
        turn: _Turn[B, P, R] = _Turn(plan)
        turn.finished.set()  # a plan holds the batch for no code of its caller
        self._enqueue(turn)
        await turn.committed.wait()
        if turn.error is not None:
            raise _failed(turn.error)
        return turn.outcome  # type: ignore[return-value]  # set with the batch's success

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[B]:
        """Wait for this write's turn in a batch and yield the batch; on a normal exit, return
        once the batch has committed. Raises DatabaseUnavailable if the batch failed, and
        otherwise whatever the block raised, after the batch's outcome is known."""
        turn: _Turn[B, P, R] = _Turn()
        self._enqueue(turn)
        try:
            try:
                await turn.started.wait()
                if turn.batch is None:
                    raise _failed(turn.error)
                yield turn.batch
            finally:
                turn.finished.set()  # the next write of the batch may go on
        except Exception:
            await turn.committed.wait()
            if turn.error is not None:
                raise _failed(turn.error)  # noqa: B904 (the batch's failure is the answer)
            raise
        await turn.committed.wait()
        if turn.error is not None:
            raise _failed(turn.error)

    def _enqueue(self, turn: _Turn[B, P, R]) -> None:
        self._queue.append(turn)
        self._arrived.set()
        loop = asyncio.get_running_loop()
        # A task of another loop (one that was closed under it) will never run again.
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            if self._task is not None and self._task.get_loop() is not loop:
                self._arrived = asyncio.Event()  # one that waited is bound to the old loop
                self._arrived.set()
            self._task = loop.create_task(self._run(), name="flaggery-group-commit")

    async def _run(self) -> None:
        while self._queue:
            await self._gather()
            count = min(len(self._queue), self._max_batch)
            self._last_batch = count
            await self._commit([self._queue.popleft() for _ in range(count)])

    async def _gather(self) -> None:
        """Wait up to `GATHER_SECONDS` while fewer writes are queued than the last batch had.

        Writers that wait for their answer (a client on a keep-alive connection, a loop of
        awaited writes) send their next write when the batch answers them, one after another
        over a millisecond or two. Started at the first of them, a batch took one write and
        the next the other fifteen: 16 clients were served by batches alternating 1 and 15
        writes (the admin server, measured), each costing a whole transaction. Waiting for
        them makes one batch of 16. A lone writer (a last batch of one) never waits."""
        expected = min(self._last_batch, self._max_batch)
        if len(self._queue) >= expected:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._gather_seconds
        while len(self._queue) < expected:
            self._arrived.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _commit(self, turns: list[_Turn[B, P, R]]) -> None:
        try:
            async with self._begin() as batch:
                start = 0
                while start < len(turns):
                    start = await self._next(batch, turns, start)
        except BaseException as error:
            if not isinstance(error, DatabaseUnavailable | asyncio.CancelledError):
                log.error("A batch of %s writes failed", len(turns), exc_info=True)
            for turn in turns:
                turn.end(error)
            if not isinstance(error, Exception):
                raise
        else:
            for turn in turns:
                turn.end(None)

    async def _next(self, batch: B, turns: list[_Turn[B, P, R]], start: int) -> int:
        """Run the write at ``start``, or the run of plans starting there; return where the
        next write starts."""
        if turns[start].plan is None:
            turn = turns[start]
            turn.batch = batch
            turn.started.set()
            await turn.finished.wait()
            return start + 1
        end = start
        while end < len(turns) and turns[end].plan is not None:
            end += 1
        run = turns[start:end]
        plans = [turn.plan for turn in run if turn.plan is not None]
        outcomes = await self._apply(batch, plans)
        for turn, outcome in zip(run, outcomes, strict=True):
            turn.outcome = outcome
        return end


def _failed(error: BaseException | None) -> DatabaseUnavailable:
    """A new exception per write (one object raised in many tasks would collect all their
    tracebacks), with the batch's message when it was already translated."""
    if isinstance(error, DatabaseUnavailable):
        return DatabaseUnavailable(str(error))
    return DatabaseUnavailable(
        f"The write was not committed: the transaction it shared with other writes failed "
        f"({error!r}). Nothing of it was written; retry."
    )
