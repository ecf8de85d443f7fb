"""The snapshot file: the last good state on disk, for a replica that starts without its database.

The file holds the State (as `flaggery.engine.encode_state` encodes it) and the wall-clock time
it was last confirmed current, which a restored replica reports its age from. It is replaced
atomically (a temporary file in the same directory, fsync, rename), so a reader finds the
previous file or the new one, never a torn one, even if the writer dies halfway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from flaggery.engine import Snapshot, decode_state, encode_state
from flaggery.engine.model import State
from flaggery.live.tasks import STOP_TIMEOUT_SECONDS
from flaggery.store.replica import Replica

__all__ = ["SavedSnapshot", "SnapshotFileWriter", "read_snapshot_file", "write_snapshot_file"]

log = logging.getLogger(__name__)

# An unchanged state is written again this long after the last write, so that the age a
# restored replica reports is the time since the database was last seen, not since it changed.
REWRITE_UNCHANGED_AFTER_SECONDS = 60.0


class SavedSnapshot(msgspec.Struct, frozen=True):
    state: State
    confirmed_at: datetime
    """When the state was last confirmed current (UTC wall clock)."""

    @property
    def age_seconds(self) -> float:
        return max((datetime.now(UTC) - self.confirmed_at).total_seconds(), 0.0)


class _FileContents(msgspec.Struct, frozen=True):
    confirmed_at: datetime
    state: bytes
    """The bytes of encode_state() (flaggery.engine.state_codec)."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_FileContents)


def write_snapshot_file(path: Path, state: State, confirmed_at: datetime) -> None:
    """Replace the file at `path` atomically and durably."""
    data = _encoder.encode(_FileContents(confirmed_at, encode_state(state)))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def read_snapshot_file(path: Path) -> SavedSnapshot | None:
    """The saved snapshot, or None if there is no file. ValueError if it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    contents = _decoder.decode(data)
    return SavedSnapshot(decode_state(contents.state), contents.confirmed_at)


class SnapshotFileWriter:
    """Keeps the snapshot file in step with a replica, from a background task.

    Every `interval` seconds it writes the replica's snapshot if its revision is not the one in
    the file (or the file is getting old, see REWRITE_UNCHANGED_AFTER_SECONDS), so the file
    lags at most `interval` behind, however fast writes come, and a large state is written at
    most once per `interval`. Conversion and I/O run in a worker thread, so the event loop never
    waits for them. A failed write is logged and tried again next time; `stop()` writes what is
    still unsaved.
    """

    def __init__(self, path: Path, replica: Replica, interval: float) -> None:
        self._path = path
        self._replica = replica
        self._interval = interval
        self._saved_revision: int | None = None
        self._saved_confirmation = 0.0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="flaggery-snapshot-file")

    async def stop(self) -> None:
        # Not cancelled: a write cut off in its thread could land after a newer one.
        self._stopping.set()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_SECONDS)
            if pending:
                log.error("The snapshot file writer did not stop within %.1f s (a write "
                          "blocked in its thread); leaving it", STOP_TIMEOUT_SECONDS)  # fmt: skip
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._save_if_due()
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):  # not wait_for: see live.tasks
                    await self._stopping.wait()

    async def _save_if_due(self) -> None:
        replica = self._replica
        confirmed = replica.counts.last_success
        # Only states read from the database are saved: a restored one is in the file already.
        if confirmed is None or replica.counts.full == 0:
            return
        snapshot = replica.snapshot
        if (
            snapshot.revision == self._saved_revision
            and confirmed - self._saved_confirmation < REWRITE_UNCHANGED_AFTER_SECONDS
        ):
            return
        confirmed_at = datetime.now(UTC) - timedelta(seconds=time.monotonic() - confirmed)
        try:
            await asyncio.to_thread(_write_snapshot, self._path, snapshot, confirmed_at)
        except OSError as error:
            log.warning("Could not write the snapshot file %s: %s", self._path, error)
            return
        self._saved_revision = snapshot.revision
        self._saved_confirmation = confirmed


def _write_snapshot(path: Path, snapshot: Snapshot, confirmed_at: datetime) -> None:
    write_snapshot_file(path, snapshot.to_state(), confirmed_at)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: it is an entry in the directory."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
