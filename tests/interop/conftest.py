"""Fixtures for driving real OCI clients against a real ``modelyard serve`` subprocess."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers

ServerFactory = Callable[..., ServerProcess]


pytest_runtest_makereport = attach_server_logs


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with given flags; each is stopped (by its own PID) at the end."""
    servers: list[ServerProcess] = []
    register_servers(request.node, servers)

    def start(*extra: str, name: str = "server", port: int | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path / f"{name}-data", tmp_path / f"{name}.log", port=port, extra=extra)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory()


@pytest.fixture(scope="session")
def skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is not installed: run scripts/bootstrap --system (it installs Debian's skopeo)")
    return path
