"""Running real ``flaggery`` server processes in tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flaggery_command() -> list[str]:
    """The installed console script, or the module if the script is not on PATH."""
    script = shutil.which("flaggery")
    return [script] if script else [sys.executable, "-m", "flaggery.cli"]


@dataclass
class ServerProcess:
    """A running ``flaggery``: the process, a client for it, and the file its output goes to."""

    process: subprocess.Popen[bytes]
    client: httpx.Client
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.client.base_url.port or 80)


@contextlib.contextmanager
def flaggery_process(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[ServerProcess]:
    """A ``flaggery`` process on ``port`` (default: a free one), ready. Its output goes to
    ``cwd/server-<port>.log`` and is shown if it fails to start. Terminated at the end if it
    still runs."""
    port = free_port() if port is None else port
    log_path = cwd / f"server-{port}.log"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGGERY_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*flaggery_command(), "--port", str(port), *args],
            cwd=cwd,
            env={**clean_env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            _wait_ready(client, process, log_path)
            yield ServerProcess(process, client, log_path)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def flaggery_server(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """``flaggery_process``, for tests that only need its client."""
    with flaggery_process(args, cwd, env) as server:
        yield server.client


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"flaggery exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"flaggery did not become ready:\n{log.read_text()}")


def wait_for(condition: object, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until it is true."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition} stayed false for {timeout} s")
        time.sleep(0.05)
