"""A throwaway PostgreSQL cluster that a test may stop and start at will.

Outage tests must never touch the shared server other people's test runs use, so they get a
cluster of their own: ``initdb`` in a temporary directory, ``pg_ctl`` on a free port, a unix
socket inside that directory, and everything deleted afterwards. PostgreSQL refuses to run as
root, so as root the server commands run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PG_BIN_GLOB", "PrivateCluster", "find_pg_bin", "private_cluster", "private_standby"]

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
START_TIMEOUT_SECONDS = 30


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (FLAGGERY_PG_BIN, else the newest Debian-style
    install), or None if PostgreSQL's server is not installed."""
    installed = sorted(glob.glob(PG_BIN_GLOB), key=lambda path: Path(path).parent.name.zfill(4))
    for candidate in (os.environ.get("FLAGGERY_PG_BIN"), *reversed(installed)):
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    return None


class PrivateCluster:
    """One cluster in ``root``, listening on 127.0.0.1:``port``, user ``postgres``, trust."""

    def __init__(self, pg_bin: Path, root: Path, port: int) -> None:
        self.pg_bin = pg_bin
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")

    def base_backup_of(self, primary: PrivateCluster) -> None:
        """Make this cluster a streaming hot standby of `primary` (instead of `init`):
        ``pg_basebackup -R`` writes the standby signal and the connection to follow."""
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", self.data, "-R", "-X", "stream", "--no-sync", "--checkpoint", "fast",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        timeout = str(START_TIMEOUT_SECONDS)
        self._run(
            "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", timeout, "start"
        )

    def promote(self) -> None:
        """Make a standby a primary (what a failover does)."""
        self._run("pg_ctl", "-D", self.data, "-w", "promote")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client and shuts down cleanly."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def freeze(self) -> None:
        """Suspend every server process: connections open but nothing is ever answered, as
        when the host hangs or the network drops packets."""
        for pid in self._server_pids():  # the postmaster first: it forks no more backends
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._server_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def is_running(self) -> bool:
        status = self._command("pg_ctl", "-D", self.data, "status")
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def _server_pids(self) -> list[int]:
        """The postmaster of this cluster, then its children."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().split()[0])
        listing = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True
        )
        return [postmaster, *map(int, listing.stdout.split())]

    def _run(self, program: str, *args: str | Path) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}\n{log}")

    def _command(self, program: str, *args: str | Path) -> list[str]:
        command = [str(self.pg_bin / program), *map(str, args)]
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVER_USER, "--", *command]
        return command


@contextlib.contextmanager
def private_cluster(pg_bin: Path) -> Iterator[PrivateCluster]:
    """A running private cluster, stopped and deleted on exit."""
    with _cluster_root(pg_bin) as cluster:
        cluster.init()
        cluster.start()
        yield cluster


@contextlib.contextmanager
def private_standby(primary: PrivateCluster) -> Iterator[PrivateCluster]:
    """A running hot standby of `primary` (streaming replication), stopped and deleted on exit.
    The primary's defaults allow it: ``wal_level=replica``, WAL senders, and initdb's trust
    rule for replication connections from 127.0.0.1."""
    with _cluster_root(primary.pg_bin) as standby:
        standby.base_backup_of(primary)
        standby.start()
        yield standby


@contextlib.contextmanager
def _cluster_root(pg_bin: Path) -> Iterator[PrivateCluster]:
    root = Path(tempfile.mkdtemp(prefix="flaggery-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, SERVER_USER, SERVER_USER)
        cluster = PrivateCluster(pg_bin, root, _free_port())
        try:
            yield cluster
        finally:
            cluster.thaw()  # a failed test may have left it frozen
            if cluster.is_running():
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
