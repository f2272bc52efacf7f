"""Fixtures for driving real OCI clients against a real ``modelyard serve`` subprocess."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.serverproc import ServerProcess

ServerFactory = Callable[..., ServerProcess]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test gets the log of every server it started as a report section."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in getattr(item, "_modelyard_servers", []):
            report.sections.append((f"modelyard serve log (port {server.port})", server.log()))


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with given flags; each is stopped (by its own PID) at the end."""
    servers: list[ServerProcess] = []
    request.node._modelyard_servers = servers

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
