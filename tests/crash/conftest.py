"""A real ``modelyard serve`` that the crash tests SIGKILL and restart on the same data dir and port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers

pytest_runtest_makereport = attach_server_logs


@pytest.fixture
def crash_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """One server (fsync on, as in production); ``kill()`` SIGKILLs it, ``restart()`` brings it back."""
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    register_servers(request.node, [server])
    server.start()
    yield server
    server.stop()
