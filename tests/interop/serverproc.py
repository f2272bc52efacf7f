"""The real ``modelyard serve`` as a subprocess, for the interop and crash suites.

The server runs in its own session (``start_new_session``) so that its process group is ours:
stopping it by PID (or, with ``--workers``, its group, whose id is that same PID) can never
touch a process this suite did not start. Its stdout and stderr go to a file that a failing
test gets as a report section (see ``tests/interop/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int | str, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "modelyard",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        # Auth is on by default; suites that test it pass --auth.
        *(() if "--auth" in extra else ("--no-auth",)),
        *extra,
    ]


class ServerProcess:
    """One ``modelyard serve`` on a fixed data directory and port, restartable after a kill."""

    def __init__(self, data_dir: Path, log_path: Path, *, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self.extra = extra if extra else ("--no-access-log",)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not running"
        return self.process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "server already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start #{self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                serve_command(self.port, self.data_dir, *self.extra),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"modelyard serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = response.status
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"modelyard serve did not answer GET /v2/ in {START_TIMEOUT} s ({last_error}):\n{self.log()}"
        )

    def kill(self) -> None:
        """SIGKILL, no goodbye: the crash the suite is about."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def restart(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL the server's own process group if it does not go."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        # Worker processes (``--workers``) live in the group the server leads; its id is its PID.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"


_SERVERS = pytest.StashKey[list[ServerProcess]]()


def register_servers(item: pytest.Item, servers: list[ServerProcess]) -> None:
    """Let :func:`attach_server_logs` find the servers a test started."""
    item.stash[_SERVERS] = servers


@pytest.hookimpl(hookwrapper=True)
def attach_server_logs(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """``pytest_runtest_makereport`` for a conftest: a failing test gets every server's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"modelyard serve log (port {server.port})", server.log()))
