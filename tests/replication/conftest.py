"""Two real registries on 127.0.0.1: the source (``modelyard`` in-process, its leader running
the replication job with fast polling) and a target: in-process too, or ``modelyard serve`` as a
subprocess that a test can SIGKILL mid-copy and start again on the same port and data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.liveserver import LiveServer, live_server
from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers

pytest_runtest_makereport = attach_server_logs

FAST: dict[str, Any] = {
    "replication_poll_interval": 0.1,
    "replication_retry_base": 0.2,
    "replication_retry_max": 1.0,
    "leader_poll_interval": 0.1,
    "replication_chunk_size": 1 << 20,
}


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path / "source", **FAST) as running:
        yield running


@pytest.fixture
def api(source: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=source.url, timeout=60) as client:
        yield client


@pytest.fixture
def target(tmp_path: Path) -> Iterator[LiveServer]:
    """A target registry in-process (starts in a fraction of the time of a subprocess)."""
    with live_server(data_dir=tmp_path / "target") as running:
        yield running


@pytest.fixture
def killable(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A target registry that can be SIGKILLed and started again on the same port and data."""
    server = ServerProcess(tmp_path / "target", tmp_path / "target.log")
    register_servers(request.node, [server])
    server.start()
    try:
        yield server
    finally:
        server.stop()
