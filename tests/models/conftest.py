"""Fixtures for the model push/pull suites: a ``modelyard serve`` subprocess (for tests that kill
a client mid-push or drive oras-py), with its log attached to a failing test's report, and a
private config directory per test (stored logins and resumable upload state)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers

pytest_runtest_makereport = attach_server_logs


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(path))
    monkeypatch.delenv("MODELYARD_API_KEY", raising=False)
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    return path


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """``modelyard serve --no-auth`` on a fresh data directory."""
    server = ServerProcess(tmp_path / "served-data", tmp_path / "served.log")
    register_servers(request.node, [server])
    server.start()
    try:
        yield server
    finally:
        server.stop()
